"""The FINS modules' ``__all__`` lists are honest, and FinsPlc satisfies the PlcDevice protocol."""

from __future__ import annotations

import pytest

from bridges.fins import FinsPlc
from bridges.plc.device import PlcDevice
from model.bridges.fins import FinsDevice
from tests.exports import assert_all_is_honest

MODULES = [
    "bridges.fins",
    "bridges.fins.client",
    "bridges.fins.codec",
    "bridges.fins.device",
    "bridges.fins.endcodes",
    "bridges.fins.frame",
    "bridges.fins.plan",
    "bridges.sim.fins_memory",
    "bridges.sim.fins_plant",
    "bridges.sim.fins_server",
    "model.bridges.fins",
    "model.bridges.fins_address",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_honest(name: str) -> None:
    assert_all_is_honest(name)


def test_fins_plc_is_a_plc_device() -> None:
    config = FinsDevice.model_validate({"id": "p", "host": "10.0.0.7", "tags": [{"name": "a", "address": "D0"}]})
    device: PlcDevice = FinsPlc(bridge="b", config=config)
    assert device.endpoint == "fins udp 10.0.0.7:9600 node 0.auto.0"
    assert [t.name for t in device.tags()] == ["a"]
