"""The LoRaWAN connector's config: a registered kind, every field described, bad configs refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from bridges.lorawan import LorawanSource
from bridges.registry import KINDS, build_source
from model.bridges import BridgeConfig
from model.bridges.lorawan import LorawanBridgeConfig
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl

_CONFIG: dict[str, object] = {
    "kind": "lorawan",
    "name": "lora",
    "edge": {"group": "env"},
    "server": {"flavour": "tts", "application_id": "plant@ttn", "host": "eu1.cloud.thethings.network",
               "port": 8883, "tls": True, "username": "plant@ttn", "password": "NNSXS.s3cret"},
    "devices": [{"id": "meter", "dev_eui": "70B3D57ED0051A01",
                 "metrics": [{"path": "$.energy_4", "name": "Energy", "unit": "kWh"}]}],
}  # fmt: skip


def test_lorawan_is_a_registered_kind(tmp_path: Path) -> None:
    config = TypeAdapter(BridgeConfig).validate_python(_CONFIG)
    assert isinstance(config, LorawanBridgeConfig)
    assert "lorawan" in KINDS
    assert isinstance(build_source(config, network_clients(BrokerUrl(port=1)), tmp_path), LorawanSource)
    assert config.session_id == "uns-lorawan-env-lora"
    assert config.devices[0].tts_id == "eui-70b3d57ed0051a01"


def test_every_field_is_described() -> None:
    schema = LorawanBridgeConfig.model_json_schema()
    for model in [schema, *schema["$defs"].values()]:
        for field, spec in model.get("properties", {}).items():
            assert spec.get("description"), f"{model.get('title')}.{field} has no description"


def test_the_password_never_shows() -> None:
    config = LorawanBridgeConfig.model_validate(_CONFIG)
    assert "s3cret" not in repr(config) + config.model_dump_json()


def _with(**changes: object) -> dict[str, object]:
    device = dict(_CONFIG["devices"][0]) | changes  # type: ignore[index]
    return _CONFIG | {"devices": [device]}


@pytest.mark.parametrize(
    ("config", "where", "words"),
    [
        (_with(dev_eui="70B3D57ED0051A0"), ("devices", 0, "dev_eui"), "should match pattern"),
        (_with(codec="lpp"), ("devices", 0, "codec"), "should match pattern"),
        (_with(metrics=[{"path": "$.x", "name": "Radio/RSSI"}]), (), "Radio/RSSI: Radio/, Battery/, LoRaWAN/"),
        (_with(downlinks=[{"name": "Command/Relay", "f_port": 0, "field": "digital_out_1"}]),
         ("devices", 0, "downlinks", 0, "f_port"), "greater than or equal to 1"),
        (_with(downlinks=[{"name": "Command/Relay", "f_port": 3}]), ("devices", 0, "downlinks", 0),
         "encoding codec needs field"),
        (_with(downlinks=[{"name": "Command/Raw", "f_port": 3, "encoding": "raw"}]), ("devices", 0, "downlinks", 0),
         "type must be String"),
        (_with(id="network-server"), (), "reserved"),
        (_CONFIG | {"devices": [_with()["devices"][0], _with(id="b")["devices"][0]]}, (),  # type: ignore[index]
         "dev_eui 70B3D57ED0051A01 appears twice"),
        (_CONFIG | {"server": {"flavour": "chirpstack", "application_id": "a", "username": "u"}}, ("server",),
         "need host"),
        (_CONFIG | {"server": {"flavour": "loriot", "application_id": "a"}}, ("server", "flavour"), "chirpstack"),
    ],
)  # fmt: skip
def test_bad_configs_name_the_field(config: dict[str, object], where: tuple[object, ...], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        LorawanBridgeConfig.model_validate(config)
    [error] = caught.value.errors()
    assert error["loc"] == where
    assert words in error["msg"]
