"""A Node.js peer (a script in tests/peers/node) as a subprocess: JSON event lines read with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from tests.fixtures.requires import PEER_PACKAGES, require

__all__ = ["NodePeer", "node_peer"]


class NodePeer:
    """A running ``node <script>``: each stdout line is one JSON event ``{"event": ..., ...}``."""

    def __init__(self, process: asyncio.subprocess.Process, script: str) -> None:
        self.process = process
        self.script = script
        self.events: list[dict[str, object]] = []

    async def next_event(self, *names: str, within_s: float = 10.0) -> dict[str, object]:
        """The next event named one of ``names``; fail naming the events seen if none comes in time."""
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(within_s):
                while True:
                    line = await self.process.stdout.readline()
                    if not line:
                        raise AssertionError(
                            f"{self.script} exited ({await self._exit()}) before {names}: {self.events}"
                        )
                    event: dict[str, object] = json.loads(line)
                    self.events.append(event)
                    if event["event"] in names:
                        return event
        except TimeoutError:
            raise AssertionError(f"{self.script}: no {names} within {within_s} s; events {self.events}") from None

    async def all_events(self, *, within_s: float = 10.0) -> list[dict[str, object]]:
        """Every event until the script exits by itself."""
        assert self.process.stdout is not None
        async with asyncio.timeout(within_s):
            async for line in self.process.stdout:
                self.events.append(json.loads(line))
            await self.process.wait()
        return self.events

    def kill(self) -> None:
        """SIGKILL: no DISCONNECT, no goodbye; the broker sees the socket close (a pulled cable or kill -9)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def _exit(self) -> str:
        assert self.process.stderr is not None
        code = await self.process.wait()
        return f"exit {code}: {(await self.process.stderr.read()).decode(errors='replace')[-2000:]}"


@contextlib.asynccontextmanager
async def node_peer(script: str, *args: str) -> AsyncIterator[NodePeer]:
    """Start ``node tests/peers/node/<script> <args>``; killed on exit. Skips without node or the npm packages."""
    node = require("node")
    require("peer-packages")
    process = await asyncio.create_subprocess_exec(
        node,
        str(Path(PEER_PACKAGES) / script),
        *args,
        cwd=PEER_PACKAGES,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    peer = NodePeer(process, script)
    try:
        yield peer
    finally:
        peer.kill()
        async with asyncio.timeout(5):
            await process.wait()
