"""The Modbus config model's errors name the registers and addresses at fault."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from model.bridges.modbus import ModbusDevice


def _device(*registers: dict[str, object], **fields: object) -> ModbusDevice:
    return ModbusDevice.model_validate({"id": "press", "registers": list(registers), **fields})


@pytest.mark.parametrize(
    ("registers", "fields", "message"),
    [
        (
            [
                {"name": "speed", "table": "holding", "address": 10, "type": "float32"},
                {"name": "temp", "table": "holding", "address": 11},
            ],
            {},
            "register temp overlaps speed at holding address 11",
        ),
        (
            [{"name": "big", "table": "input", "address": 65534, "type": "uint64"}],
            {},
            "big: address 65534 + 4 registers is past 65535",
        ),
        (
            [{"name": "x", "table": "holding", "address": 70000}],
            {},
            "less than or equal to 65535",
        ),
        (
            [{"name": "label", "table": "holding", "address": 0, "type": "string", "length": 20}],
            {"max_read": 10},
            "register label: 20 registers exceed max_read 10 of device press",
        ),
        ([{"name": "c", "table": "coil", "address": 0}], {}, "c: coil must be type bool"),
        ([{"name": "c", "table": "input", "address": 0, "writable": True}], {}, "c: only coils and holding"),
        ([{"name": "c", "table": "holding", "address": 0}], {"backoff_min_s": 5, "backoff_max_s": 1}, "backoff_min_s"),
        ([{"name": "t", "table": "input", "address": 0, "decimals": -1}], {}, "decimals\n  Input should be greater"),
        ([{"name": "t", "table": "input", "address": 0, "decimals": 16}], {}, "decimals\n  Input should be less"),
        ([{"name": "b", "table": "coil", "address": 0, "type": "bool", "decimals": 1}], {}, "b: decimals applies to"),
    ],
)
def test_config_errors_name_register_and_address(
    registers: list[dict[str, object]], fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _device(*registers, **fields)
    assert message in str(caught.value)


def test_same_address_in_different_tables_is_fine() -> None:
    device = _device(
        {"name": "a", "table": "holding", "address": 5},
        {"name": "b", "table": "input", "address": 5},
        {"name": "c", "table": "coil", "address": 5, "type": "bool"},
    )
    assert [r.name for r in device.registers] == ["a", "b", "c"]


def test_decimals_is_described_in_the_schema() -> None:
    field = ModbusDevice.model_json_schema()["$defs"]["ModbusRegister"]["properties"]["decimals"]
    assert field["anyOf"][0] == {"minimum": 0, "maximum": 15, "type": "integer"}
    assert "scale 0.1 -> 1" in field["description"]
