"""Which Source serves which bridge ``kind``, and the EdgeNode that publishes it."""

from __future__ import annotations

from pathlib import Path

from bridges.amqp import make_source as make_amqp_source
from bridges.edge import EdgeNode
from bridges.ethernetip import make_source as make_ethernetip_source
from bridges.fins import make_source as make_fins_source
from bridges.gpio import make_source as make_gpio_source
from bridges.http import make_source as make_http_source
from bridges.lorawan import make_source as make_lorawan_source
from bridges.lwm2m import make_source as make_lwm2m_source
from bridges.modbus import ModbusSource
from bridges.mqtt_json import MqttJsonSource
from bridges.opcua import OpcUaSource
from bridges.s7 import make_source as make_s7_source
from bridges.serial import make_source as make_serial_source
from bridges.slmp import make_source as make_slmp_source
from bridges.source import Source
from bridges.sql import make_source as make_sql_source
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
        return ModbusSource(config=config)
    if isinstance(config, OpcUaBridgeConfig):
        return OpcUaSource(config=config)
    if isinstance(config, MqttJsonBridgeConfig):
        source_clients = network_clients(BrokerUrl.from_str(config.source_broker)) if config.source_broker else clients
        return MqttJsonSource(config=config, clients=source_clients)
    if isinstance(config, S7BridgeConfig):
        return make_s7_source(config)
    if isinstance(config, SlmpBridgeConfig):
        return make_slmp_source(config)
    if isinstance(config, EthernetIpBridgeConfig):
        return make_ethernetip_source(config, data_dir)
    if isinstance(config, FinsBridgeConfig):
        return make_fins_source(config)
    if isinstance(config, SqlBridgeConfig):
        return make_sql_source(config, clients, data_dir or Path("data"))
    if isinstance(config, HttpBridgeConfig):
        return make_http_source(config, clients, data_dir or Path("data"))
    if isinstance(config, Lwm2mBridgeConfig):
        return make_lwm2m_source(config, data_dir or Path("data"))
    if isinstance(config, AmqpBridgeConfig):
        return make_amqp_source(config, clients, data_dir or Path("data"))
    if isinstance(config, LorawanBridgeConfig):
        return make_lorawan_source(config, clients)
    if isinstance(config, SerialBridgeConfig):
        return make_serial_source(config, clients)
    if isinstance(config, GpioBridgeConfig):
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
