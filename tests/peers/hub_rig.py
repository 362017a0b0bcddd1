"""The hub the third-party peers talk to: ``uns up --no-demo`` in this process, every port 0 on 127.0.0.1."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.fixtures.up import hub_up
from tests.fixtures.waiting import eventually

__all__ = ["PeerHub", "running_peer_hub"]


Row = dict[str, object]


@dataclass(frozen=True)
class PeerHub:
    """Where the running hub listens (from its ready line) and what its HTTP API says."""

    mqtt: str
    ws: str
    http: str
    enterprise: str

    async def last(self, match: str) -> list[Row]:
        """The historian's latest value of each series matching ``match`` (``uns query last``, over HTTP)."""
        async with httpx.AsyncClient(base_url=self.http, timeout=5) as client:
            response = await client.get("/api/history/last", params={"match": match})
        if response.status_code == 404:  # a plain topic not stored yet
            return []
        assert response.status_code == 200, response.text
        rows = response.json()["rows"]
        assert isinstance(rows, list)
        return rows

    async def wait_last(
        self, match: str, condition: Callable[[list[Row]], bool], *, what: str, within_s: float = 5.0
    ) -> list[Row]:
        """Poll ``last`` until ``condition(rows)``; fail naming ``what`` and the last rows after ``within_s``."""
        return await eventually(functools.partial(self.last, match), condition, within_s=within_s, what=what)

    async def rebirth(self, group: str, node: str) -> None:
        """The hub's own Rebirth request (the web UI's button): an NCMD ``Node Control/Rebirth``."""
        async with httpx.AsyncClient(base_url=self.http, timeout=5) as client:
            response = await client.post("/api/sparkplug/rebirth", json={"group": group, "node": node})
        assert response.status_code == 202, response.text


@contextlib.asynccontextmanager
async def running_peer_hub(data_dir: Path, *, broker_config: Path | None = None) -> AsyncIterator[PeerHub]:
    """The whole hub (embedded broker with WebSocket, host, historian, web), the demo plant's tree, no sim."""
    overrides = {"host.rebirth_min_interval_s": 0.0, "historian.flush_interval_s": 0.1}
    # default broker config: anonymous access on loopback, as a fresh checkout runs
    async with hub_up(data_dir, overrides, broker_config=broker_config, within_s=20, name="test.peer-hub") as up:
        at = up.endpoints
        yield PeerHub(at["mqtt"], at["ws"], at["http"], up.plant.enterprise.id)
