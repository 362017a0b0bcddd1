"""The Modbus bridge's ``__all__`` lists are honest, and ModbusSource satisfies the Source protocol."""

from __future__ import annotations

import importlib

import pytest

from bridges.modbus import ModbusSource
from bridges.source import Source
from tests.bridges.modbus.servers import bridge_config

MODULES = [
    "bridges.modbus",
    "bridges.modbus.codec",
    "bridges.modbus.plan",
    "bridges.modbus.link",
    "bridges.modbus.source",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_public(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__, name
    for export in module.__all__:
        assert hasattr(module, export), export
        assert not export.startswith("_"), export


def test_modbus_source_is_a_source() -> None:
    # mypy checks the protocol statically; this checks the name the edge node logs
    source: Source = ModbusSource(
        config=bridge_config({"id": "d", "registers": [{"name": "v", "table": "holding", "address": 0}]})
    )
    assert source.name == "plc"
