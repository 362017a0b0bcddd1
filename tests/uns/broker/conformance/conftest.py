"""The conformance tests' broker: either one, the embedded broker or Mosquitto 2.0.11, side by side."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fixtures.broker import start_broker
from uns.mqtt.types import BrokerUrl

__all__ = ["target"]


@pytest.fixture(params=["embedded", "mosquitto"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, BrokerUrl]]:
    """Either broker, anonymous access allowed: its kind and URL (a module may define its own ``target``)."""
    if request.param == "mosquitto":
        yield "mosquitto", BrokerUrl.from_str(request.getfixturevalue("mosquitto").url)
        return
    async with start_broker(tmp_path) as broker:
        yield "embedded", broker.url
