"""The GPIO source's config: a registered kind, every field described, bad settings refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from bridges.gpio import GpioSource
from bridges.registry import KINDS, build_source
from model.bridges import BridgeConfig
from model.bridges.gpio import GpioBridgeConfig
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl


def _config(**device: object) -> dict[str, object]:
    return {"kind": "gpio", "name": "io", "edge": {"group": "g"},
            "devices": [{"id": "pal", "inputs": [{"line": 3, "name": "Part"}], **device}]}  # fmt: skip


def test_gpio_is_a_registered_kind(tmp_path: Path) -> None:
    config = TypeAdapter(BridgeConfig).validate_python(_config())
    assert isinstance(config, GpioBridgeConfig)
    assert "gpio" in KINDS
    assert isinstance(build_source(config, network_clients(BrokerUrl(port=1)), tmp_path), GpioSource)
    assert config.devices[0].chip == "/dev/gpiochip0"
    assert config.devices[0].inputs[0].debounce_ms == 10.0


def test_every_field_is_described() -> None:
    schema = GpioBridgeConfig.model_json_schema()
    for model in [schema, *schema["$defs"].values()]:
        for field, spec in model.get("properties", {}).items():
            assert spec.get("description"), f"{model.get('title')}.{field} has no description"


@pytest.mark.parametrize(
    ("device", "where", "says"),
    [
        ({"inputs": []}, "devices.0", "give inputs, outputs or both"),
        ({"outputs": [{"line": 3, "name": "Lamp"}]}, "devices.0", "lines used twice: 3"),
        ({"outputs": [{"line": 4, "name": "Part"}]}, "devices.0", "metric names used twice: Part"),
        ({"inputs": [{"line": 3, "name": "Part", "mode": "count"}]}, "devices.0.inputs.0.mode", "'state' or 'counter'"),
        (
            {"inputs": [{"line": 3, "name": "Part", "debounce_ms": -1}]},
            "devices.0.inputs.0.debounce_ms",
            "greater than or equal to 0",
        ),
    ],
)
def test_bad_settings_name_the_field(device: dict[str, object], where: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        GpioBridgeConfig.model_validate(_config(**device))
    error = caught.value.errors()[0]
    assert ".".join(str(p) for p in error["loc"]) == where
    assert says in error["msg"]


def test_a_device_id_used_twice_is_refused() -> None:
    data = _config()
    devices = data["devices"]
    assert isinstance(devices, list)
    data["devices"] = [*devices, {"id": "pal", "chip": "/dev/gpiochip1", "outputs": [{"line": 1, "name": "Lamp"}]}]
    with pytest.raises(ValidationError, match="device ids used twice: pal"):
        GpioBridgeConfig.model_validate(data)
