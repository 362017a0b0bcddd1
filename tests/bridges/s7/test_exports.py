"""The S7 bridge's modules keep ``__all__`` honest, its config describes every field, and it is a registered kind."""

from __future__ import annotations

from typing import Any

import pytest

from bridges.plc import PlcDevice
from bridges.registry import KINDS, build_source
from bridges.s7.device import S7Plc
from bridges.s7.plus import S7PlusPlc
from model.bridges.s7 import S7BridgeConfig
from tests.bridges.s7.servers import bridge
from tests.exports import assert_all_is_honest
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl


@pytest.mark.parametrize(
    "name",
    [
        "bridges.s7",
        "bridges.s7.codec",
        "bridges.s7.counter",
        "bridges.s7.device",
        "bridges.s7.link",
        "bridges.s7.pdu",
        "bridges.s7.plan",
        "bridges.s7.plus",
        "bridges.s7.tia",
        "bridges.sim.s7_plant",
        "model.bridges.s7",
        "model.bridges.s7_address",
    ],
)
def test_exports_are_honest(name: str) -> None:
    assert_all_is_honest(name)


def _undescribed(schema: dict[str, Any]) -> set[str]:
    missing = set()
    for model, spec in {"": schema, **schema.get("$defs", {})}.items():
        for name, field in spec.get("properties", {}).items():
            if not field.get("description"):
                missing.add(f"{model}.{name}")
    return missing


def test_every_config_field_is_described_and_s7commplus_is_labelled_experimental() -> None:
    schema = S7BridgeConfig.model_json_schema()
    assert _undescribed(schema) == set()
    assert "EXPERIMENTAL" in schema["$defs"]["S7Device"]["properties"]["protocol"]["description"]


def test_s7_is_a_registered_kind_served_by_plc_devices() -> None:
    assert "s7" in KINDS
    config = bridge(102, [{"name": "W", "address": "DB1.DBW0"}])
    source = build_source(config, network_clients(BrokerUrl(port=1883)))
    assert [t.name for t in source.tags()] == ["W"]
    device: PlcDevice = S7Plc(bridge="s7", config=config.devices[0], tags=config.devices[0].tags)
    assert device.endpoint == "s7 127.0.0.1:102 rack 0 slot 1"
    plus: type[PlcDevice] = S7PlusPlc  # mypy checks the protocol
    assert plus is S7PlusPlc
