"""SLMP config: address notation per series, type and device checks, route and frame defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from model.bridges.slmp import SlmpBridgeConfig, SlmpDevice, parse_address


@pytest.mark.parametrize(
    ("address", "series", "expected"),
    [
        ("D100", "Q", ("D", 100, None)),
        ("d100", "iQ-R", ("D", 100, None)),
        ("X1F", "Q", ("X", 31, None)),
        ("Y2A", "iQ-R", ("Y", 42, None)),
        ("W1A0", "L", ("W", 416, None)),
        ("B1F", "Q", ("B", 31, None)),
        ("ZR10000", "iQ-R", ("ZR", 10000, None)),
        ("R32767", "Q", ("R", 32767, None)),
        ("SM400", "Q", ("SM", 400, None)),
        ("SD203", "iQ-R", ("SD", 203, None)),
        ("L5", "Q", ("L", 5, None)),
        ("M8191", "Q", ("M", 8191, None)),
        ("D100.F", "Q", ("D", 100, 15)),
        ("X17", "iQ-F", ("X", 15, None)),
        ("Y17", "FX5", ("Y", 15, None)),
    ],
)
def test_addresses_parse_in_gx_works_notation(address: str, series: str, expected: tuple[str, int, int | None]) -> None:
    assert parse_address(address, series) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "series", "message"),
    [
        ("Q100", "Q", "not a device address"),
        ("M1F", "Q", "M is numbered in decimal"),
        ("X18", "iQ-F", "X is numbered in octal on iQ-F"),
        ("XG", "Q", "not a device address"),
        ("M10.1", "Q", "M is a bit device"),
        ("D", "Q", "not a device address"),
    ],
)
def test_bad_addresses_are_refused_naming_them(address: str, series: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        parse_address(address, series)  # type: ignore[arg-type]
    assert repr(address) in str(refused.value)


def _device(tags: list[dict[str, object]], **fields: object) -> SlmpDevice:
    return SlmpDevice.model_validate({"id": "chiller", "tags": tags, **fields})


@pytest.mark.parametrize(
    ("tags", "fields", "message"),
    [
        ([{"name": "a", "address": "M0"}], {}, r"tag a \(M0\): a bit device .* is type bool"),
        ([{"name": "a", "address": "D0", "type": "bool"}], {}, "type bool needs a bit device"),
        ([{"name": "a", "address": "D0", "type": "string"}], {}, "a string needs length"),
        ([{"name": "a", "address": "D0"}, {"name": "a", "address": "D1"}], {}, "name used twice"),
        ([{"name": "a", "address": "D0", "poll": "fast"}], {}, "poll group 'fast' not in poll_groups"),
        ([{"name": "a", "address": "X0", "type": "bool", "writable": True}], {}, "X is an input"),
        ([{"name": "a", "address": "D0.1", "type": "bool", "writable": True}], {}, "read-modify-write"),
        ([{"name": "a", "address": "ZR0"}], {"series": "FX5"}, "FX5 has no ZR"),
        ([{"name": "a", "address": "D16777215", "type": "int32"}], {"series": "Q"}, "past the last device number"),
        ([{"name": "a", "address": "D0", "type": "string", "length": 100}], {"max_read": 50}, "exceed max_read"),
        ([{"name": "a", "address": "M1F", "type": "bool"}], {}, "tag a: address 'M1F'"),
        ([{"name": "a", "address": "D0"}], {"host": "fe80::1"}, "IPv6"),
    ],
)
def test_bad_tags_are_refused_naming_device_tag_and_address(
    tags: list[dict[str, object]], fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as refused:
        _device(tags, **fields)
    assert "chiller" in str(refused.value)


def test_iqr_wide_numbers_fit_only_the_iqr_format() -> None:
    tag: list[dict[str, object]] = [{"name": "a", "address": "D16777216"}]
    assert _device(tag, series="iQ-R").tags[0].address == "D16777216"
    with pytest.raises(ValidationError, match="Q format"):
        _device(tag, series="Q")


@pytest.mark.parametrize(
    ("fields", "frame"),
    [({"series": "iQ-R"}, "4E"), ({"series": "Q"}, "3E"), ({"series": "Q", "ethernet_module": True}, "4E"),
     ({"series": "FX5"}, "3E"), ({"series": "iQ-R", "frame": "3E"}, "3E")],
)  # fmt: skip
def test_the_frame_defaults_to_the_series_port(fields: dict[str, object], frame: str) -> None:
    assert _device([{"name": "a", "address": "D0"}], **fields).resolved_frame == frame


def test_bridge_config_defaults_and_schema_descriptions() -> None:
    config = SlmpBridgeConfig.model_validate(
        {
            "name": "slmp-utilities",
            "edge": {"group": "acme"},
            "devices": [{"id": "c", "tags": [{"name": "a", "address": "D0"}]}],
        }
    )
    device = config.devices[0]
    assert (config.kind, device.port, device.transport, device.series) == ("slmp", 5000, "tcp", "iQ-R")
    assert (device.network, device.station, device.module_io, device.multidrop) == (0, 255, 0x03FF, 0)
    schema = SlmpBridgeConfig.model_json_schema()
    for model in [schema, *schema["$defs"].values()]:
        for name, field in model.get("properties", {}).items():
            assert field.get("description"), f"{model['title']}.{name} has no description"
