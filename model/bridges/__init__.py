"""Bridge configs: one model per kind, discriminated on ``kind``."""

from typing import Annotated

from pydantic import Field

from model.bridges.amqp import AmqpBridgeConfig
from model.bridges.common import DATATYPE_NAMES, BridgeBase, DatatypeName, EdgeNodeConfig, sparkplug_id
from model.bridges.ethernetip import EthernetIpBridgeConfig
from model.bridges.fins import FinsBridgeConfig
from model.bridges.gpio import GpioBridgeConfig
from model.bridges.http import HttpBridgeConfig
from model.bridges.lorawan import LorawanBridgeConfig
from model.bridges.lwm2m import Lwm2mBridgeConfig
from model.bridges.modbus import ModbusBridgeConfig, ModbusDevice, ModbusRegister, SerialConfig
from model.bridges.mqtt_json import JsonDevice, JsonMapping, MqttJsonBridgeConfig
from model.bridges.opcua import BrowseRoot, OpcUaBridgeConfig, OpcUaDevice, OpcUaNode, OpcUaSecurity
from model.bridges.s7 import S7BridgeConfig
from model.bridges.serial import SerialBridgeConfig
from model.bridges.slmp import SlmpBridgeConfig
from model.bridges.sql import SqlBridgeConfig

BridgeConfig = Annotated[
    AmqpBridgeConfig
    | ModbusBridgeConfig
    | OpcUaBridgeConfig
    | MqttJsonBridgeConfig
    | S7BridgeConfig
    | SlmpBridgeConfig
    | EthernetIpBridgeConfig
    | FinsBridgeConfig
    | SqlBridgeConfig
    | HttpBridgeConfig
    | Lwm2mBridgeConfig
    | LorawanBridgeConfig
    | SerialBridgeConfig
    | GpioBridgeConfig,
    Field(discriminator="kind"),
]
"""Any bridge's config; ``kind`` picks the model."""

__all__ = [
    "DATATYPE_NAMES",
    "AmqpBridgeConfig",
    "BridgeBase",
    "BridgeConfig",
    "BrowseRoot",
    "DatatypeName",
    "EdgeNodeConfig",
    "EthernetIpBridgeConfig",
    "FinsBridgeConfig",
    "GpioBridgeConfig",
    "HttpBridgeConfig",
    "JsonDevice",
    "JsonMapping",
    "LorawanBridgeConfig",
    "Lwm2mBridgeConfig",
    "ModbusBridgeConfig",
    "ModbusDevice",
    "ModbusRegister",
    "MqttJsonBridgeConfig",
    "OpcUaBridgeConfig",
    "OpcUaDevice",
    "OpcUaNode",
    "OpcUaSecurity",
    "S7BridgeConfig",
    "SerialBridgeConfig",
    "SerialConfig",
    "SlmpBridgeConfig",
    "SqlBridgeConfig",
    "sparkplug_id",
]
