"""Which Source serves which bridge ``kind``, and the EdgeNode that publishes it.

Each kind's module (and its protocol library: asyncua, aio-pika, aiocoap, SQLAlchemy, ...) is imported
only when a bridge of that kind is built, so a command that runs none of them (``uns query``, ``uns mes``)
or runs one kind does not pay for loading all of them.
"""

from __future__ import annotations

from pathlib import Path

from bridges.edge import EdgeNode
from bridges.source import Source
from model.bridges import (
    AmqpBridgeConfig,
    BridgeConfig,
    EthernetIpBridgeConfig,
    FinsBridgeConfig,
    GpioBridgeConfig,
    HttpBridgeConfig,
    LorawanBridgeConfig,
    Lwm2mBridgeConfig,
    ModbusBridgeConfig,
    MqttJsonBridgeConfig,
    OpcUaBridgeConfig,
    S7BridgeConfig,
    SerialBridgeConfig,
    SlmpBridgeConfig,
    SqlBridgeConfig,
)
from uns.connect import ClientFactory, network_clients
from uns.mqtt.types import BrokerUrl

__all__ = ["KINDS", "build_edge_node", "build_source"]

KINDS = (
    "modbus", "opcua", "mqtt_json", "s7", "slmp", "ethernetip", "fins", "sql", "http", "amqp", "lwm2m", "lorawan",
    "serial", "gpio",
)  # fmt: skip
"""Every bridge kind, as written in a config's ``kind`` and in ``uns bridge <kind>``."""


def build_source(config: BridgeConfig, clients: ClientFactory, data_dir: Path | None = None) -> Source:
    """The Source for a bridge config; ``clients`` reach the hub's broker (MQTT-JSON reads from it).

    ``data_dir`` holds what a source keeps between runs (EtherNet/IP: the controllers' tag lists).
    """
    if isinstance(config, ModbusBridgeConfig):
        from bridges.modbus import ModbusSource

        return ModbusSource(config=config)
    if isinstance(config, OpcUaBridgeConfig):
        from bridges.opcua import OpcUaSource

        return OpcUaSource(config=config)
    if isinstance(config, MqttJsonBridgeConfig):
        from bridges.mqtt_json import MqttJsonSource

        source_clients = network_clients(BrokerUrl.from_str(config.source_broker)) if config.source_broker else clients
        return MqttJsonSource(config=config, clients=source_clients)
    if isinstance(config, S7BridgeConfig):
        from bridges.s7 import make_source as make_s7_source

        return make_s7_source(config)
    if isinstance(config, SlmpBridgeConfig):
        from bridges.slmp import make_source as make_slmp_source

        return make_slmp_source(config)
    if isinstance(config, EthernetIpBridgeConfig):
        from bridges.ethernetip import make_source as make_ethernetip_source

        return make_ethernetip_source(config, data_dir)
    if isinstance(config, FinsBridgeConfig):
        from bridges.fins import make_source as make_fins_source

        return make_fins_source(config)
    if isinstance(config, SqlBridgeConfig):
        from bridges.sql import make_source as make_sql_source

        return make_sql_source(config, clients, data_dir or Path("data"))
    if isinstance(config, HttpBridgeConfig):
        from bridges.http import make_source as make_http_source

        return make_http_source(config, clients, data_dir or Path("data"))
    if isinstance(config, Lwm2mBridgeConfig):
        from bridges.lwm2m import make_source as make_lwm2m_source

        return make_lwm2m_source(config, data_dir or Path("data"))
    if isinstance(config, AmqpBridgeConfig):
        from bridges.amqp import make_source as make_amqp_source

        return make_amqp_source(config, clients, data_dir or Path("data"))
    if isinstance(config, LorawanBridgeConfig):
        from bridges.lorawan import make_source as make_lorawan_source

        return make_lorawan_source(config, clients)
    if isinstance(config, SerialBridgeConfig):
        from bridges.serial import make_source as make_serial_source

        return make_serial_source(config, clients)
    if isinstance(config, GpioBridgeConfig):
        from bridges.gpio import make_source as make_gpio_source

        return make_gpio_source(config)
    raise TypeError(f"no source for bridge kind {type(config).__name__}")  # pragma: no cover  (the union is closed)


def build_edge_node(config: BridgeConfig, clients: ClientFactory, data_dir: Path) -> EdgeNode:
    """The Sparkplug edge node that runs one bridge."""
    return EdgeNode(
        config=config.edge,
        node_id=config.node_id,
        source=build_source(config, clients, data_dir),
        clients=clients,
        data_dir=data_dir,
    )
