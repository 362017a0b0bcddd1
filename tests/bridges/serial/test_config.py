"""The serial source's config: a registered kind, every field described, bad settings refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from bridges.registry import KINDS, build_source
from bridges.serial import SerialSource
from model.bridges import BridgeConfig
from model.bridges.serial import SerialBridgeConfig
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl

_DEVICE = {"id": "scale", "port": "/dev/ttyUSB0", "protocol": {"kind": "mt_sics"}}


def _config(**device: object) -> dict[str, object]:
    return {"kind": "serial", "name": "pal", "edge": {"group": "g"}, "devices": [{**_DEVICE, **device}]}


def test_serial_is_a_registered_kind(tmp_path: Path) -> None:
    config = TypeAdapter(BridgeConfig).validate_python(_config())
    assert isinstance(config, SerialBridgeConfig)
    assert "serial" in KINDS
    assert isinstance(build_source(config, network_clients(BrokerUrl(port=1)), tmp_path), SerialSource)
    device = config.devices[0]
    assert (device.baudrate, device.bytesize, device.parity, device.stopbits) == (9600, 8, "none", 1)
    assert device.framing.kind == "terminator"


def test_every_field_is_described() -> None:
    schema = SerialBridgeConfig.model_json_schema()
    for model in [schema, *schema["$defs"].values()]:
        for field, spec in model.get("properties", {}).items():
            assert spec.get("description"), f"{model.get('title')}.{field} has no description"


@pytest.mark.parametrize(
    ("device", "where", "says"),
    [
        ({"stopbits": 3}, "devices.0.stopbits", "stop bits are 1, 1.5 or 2"),
        ({"bytesize": 9}, "devices.0.bytesize", "Input should be 5, 6, 7 or 8"),
        ({"parity": "x"}, "devices.0.parity", "Input should be 'none'"),
        ({"framing": {"kind": "terminator", "terminator": "\u2028"}}, "devices.0.framing.terminator.terminator",
         "latin-1"),
        ({"protocol": {"kind": "regex", "pattern": "(?P<a>x)", "metrics": [{"group": "b", "name": "B"}]}},
         "devices.0.protocol.regex", "metrics name groups the pattern lacks: b"),
        ({"protocol": {"kind": "scanner", "pattern": "("}}, "devices.0.protocol.scanner.pattern",
         "not a regular expression"),
        ({"events": [{"event": "lot_production", "equipment_path": "a/b", "trigger": "stable_load",
                      "fields": {"lot_id": "x"}}], "protocol": {"kind": "scanner"}},
         "devices.0", "events[0].trigger: stable_load needs a scale"),
        ({"events": [{"event": "work_order", "equipment_path": "a/b", "fields": {}}]}, "devices.0.events.0.event",
         "'material_consumption' or 'lot_production'"),
    ],
)  # fmt: skip
def test_bad_settings_name_the_field(device: dict[str, object], where: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SerialBridgeConfig.model_validate(_config(**device))
    errors = caught.value.errors()
    assert ".".join(str(p) for p in errors[0]["loc"]) == where
    assert says in errors[0]["msg"]


def test_device_ids_are_unique() -> None:
    with pytest.raises(ValidationError, match="device ids used twice: scale"):
        SerialBridgeConfig.model_validate({**_config(), "devices": [_DEVICE, _DEVICE]})
