"""Every name in a LoRaWAN module's ``__all__`` exists, sorted, and the package re-exports only public names."""

from __future__ import annotations

import pytest

from tests.exports import assert_all_is_honest


@pytest.mark.parametrize(
    "module",
    [
        "bridges.lorawan",
        "bridges.lorawan.codec",
        "bridges.lorawan.downlink",
        "bridges.lorawan.events",
        "bridges.lorawan.lpp",
        "bridges.lorawan.source",
        "bridges.lorawan.tracker",
        "model.bridges.lorawan",
    ],
)
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module, in_order=True)
