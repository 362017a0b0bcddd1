"""MQTT: the client every component uses, and the seam it shares with the embedded broker."""

from uns.mqtt.types import BrokerUrl, Message, OnConnect, PubSub

__all__ = ["BrokerUrl", "Message", "OnConnect", "PubSub"]
