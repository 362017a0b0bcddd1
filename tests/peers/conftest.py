"""Fixtures of the third-party peer tests: the running hub they connect to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.peers.hub_rig import PeerHub, running_peer_hub


@pytest.fixture
async def peer_hub(tmp_path: Path) -> AsyncIterator[PeerHub]:
    """``uns up --no-demo`` in this process on free loopback ports, its historian in ``tmp_path``."""
    async with running_peer_hub(tmp_path) as hub:
        yield hub
