"""The hub the third-party peers talk to: ``uns up --no-demo`` in this process, every port 0 on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from hub.app import run_up
from uns.settings import load_plant, load_settings

__all__ = ["PeerHub", "running_peer_hub"]

_REPO = Path(__file__).parents[2]

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
        deadline = time.monotonic() + within_s
        while not condition(rows := await self.last(match)):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {within_s} s waiting for {what}: {rows}")
            await asyncio.sleep(0.05)
        return rows

    async def rebirth(self, group: str, node: str) -> None:
        """The hub's own Rebirth request (the web UI's button): an NCMD ``Node Control/Rebirth``."""
        async with httpx.AsyncClient(base_url=self.http, timeout=5) as client:
            response = await client.post("/api/sparkplug/rebirth", json={"group": group, "node": node})
        assert response.status_code == 202, response.text


def _stopped_early(stopped: asyncio.Task[None], ready: asyncio.Future[str]) -> None:
    if ready.done():
        return
    if stopped.cancelled():
        ready.cancel()
    else:
        ready.set_exception(stopped.exception() or RuntimeError("the hub stopped before its ready line"))


@contextlib.asynccontextmanager
async def running_peer_hub(data_dir: Path, *, broker_config: Path | None = None) -> AsyncIterator[PeerHub]:
    """The whole hub (embedded broker with WebSocket, host, historian, web), the demo plant's tree, no sim."""
    overrides: dict[str, object] = {
        # default: anonymous access on loopback, as a fresh checkout runs
        "broker.config": broker_config or _REPO / "broker.yaml",
        "broker.mqtt_port": 0,
        "broker.ws_port": 0,
        "web.http_port": 0,
        "data_dir": data_dir,
        "demo": False,
        "host.rebirth_min_interval_s": 0.0,
        "historian.flush_interval_s": 0.1,
    }
    settings = load_settings(config_file=None, overrides=overrides, environ={})
    plant = load_plant(settings.plant)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_up(settings, plant, ready=ready.set_result), name="test.peer-hub")
    task.add_done_callback(lambda stopped: _stopped_early(stopped, ready))
    try:
        async with asyncio.timeout(20):
            line = await ready  # raises what stopped the hub before it was ready
        endpoints = dict(part.split("=", 1) for part in line.split() if "=" in part)
        yield PeerHub(endpoints["mqtt"], endpoints["ws"], endpoints["http"], plant.enterprise.id)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
