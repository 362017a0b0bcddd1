"""The SLMP bridge's ``__all__`` lists are honest, and SlmpPlc satisfies the PlcDevice protocol."""

from __future__ import annotations

import pytest

from bridges.plc.device import PlcDevice
from bridges.slmp import SlmpPlc
from model.bridges.slmp import SlmpDevice
from tests.exports import assert_all_is_honest

MODULES = [
    "bridges.slmp",
    "bridges.slmp.codec",
    "bridges.slmp.counter",
    "bridges.slmp.device",
    "bridges.slmp.endcodes",
    "bridges.slmp.plan",
    "bridges.slmp.series",
    "bridges.sim.slmp_plant",
    "model.bridges.slmp",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_honest(name: str) -> None:
    assert_all_is_honest(name)


def test_slmp_plc_is_a_plc_device() -> None:
    device: PlcDevice = SlmpPlc(
        bridge="b",
        config=SlmpDevice(id="chiller", host="10.0.0.5", tags=[{"name": "a", "address": "D0"}]),  # type: ignore[list-item]
    )
    assert device.endpoint == "slmp tcp 10.0.0.5:5000 iQ-R 4E route 0/255/0x03FF/0"
    assert device.poll_groups() == {"default": 1.0}
