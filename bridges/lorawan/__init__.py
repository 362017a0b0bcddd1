"""The LoRaWAN connector (``kind: lorawan``): ChirpStack v4 and The Things Stack v3 MQTT integrations."""

from __future__ import annotations

from bridges.lorawan.source import LorawanSource
from model.bridges.lorawan import LorawanBridgeConfig
from uns.connect import ClientFactory, network_clients
from uns.mqtt.types import BrokerUrl

__all__ = ["LorawanSource", "make_source"]


def make_source(config: LorawanBridgeConfig, clients: ClientFactory) -> LorawanSource:
    """The Source for a LoRaWAN connector; ``clients`` reach the hub's broker, used when ``server.host`` is null."""
    server = config.server
    if server.host is not None:
        url = BrokerUrl(
            scheme="mqtts" if server.tls else "mqtt",
            host=server.host,
            port=server.port,
            username=server.username,
            password=server.password.get_secret_value() if server.password is not None else None,
        )
        clients = network_clients(url, ca_file=server.ca_file)
    return LorawanSource(config=config, clients=clients)
