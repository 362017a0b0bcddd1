"""Every name in a serial source module's ``__all__`` exists, sorted, and the package re-exports only public names."""

from __future__ import annotations

import pytest

from tests.exports import assert_all_is_honest


@pytest.mark.parametrize(
    "module",
    [
        "bridges.serial",
        "bridges.serial.events",
        "bridges.serial.framing",
        "bridges.serial.port",
        "bridges.serial.protocols",
        "bridges.serial.source",
        "bridges.sim.serial_palletizing",
        "bridges.sim.serial_scale",
        "model.bridges.serial",
    ],
)
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module, in_order=True)
