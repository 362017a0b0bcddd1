"""Every name in an LwM2M server module's ``__all__`` exists, sorted, and the package re-exports only public names."""

from __future__ import annotations

import pytest

from tests.exports import assert_all_is_honest


@pytest.mark.parametrize(
    "module",
    [
        "bridges.lwm2m",
        "bridges.lwm2m.coap",
        "bridges.lwm2m.content",
        "bridges.lwm2m.ipso",
        "bridges.lwm2m.registration",
        "bridges.lwm2m.senml",
        "bridges.lwm2m.source",
        "bridges.lwm2m.state",
        "bridges.lwm2m.tlv",
        "bridges.lwm2m.udp",
        "bridges.sim.lwm2m_client",
        "bridges.sim.lwm2m_sensors",
        "model.bridges.lwm2m",
    ],
)
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module, in_order=True)
