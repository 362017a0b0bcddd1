"""MQTT: the client every component uses, and the seam it shares with the embedded broker."""

from uns.mqtt.client import ClientStats, MqttClient
from uns.mqtt.codec import ProtocolError
from uns.mqtt.types import BrokerUrl, Message, OnConnect, PubSub

__all__ = ["BrokerUrl", "ClientStats", "Message", "MqttClient", "OnConnect", "ProtocolError", "PubSub"]
