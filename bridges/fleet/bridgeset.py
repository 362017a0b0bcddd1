"""The bridges one agent runs: brought to a new list one bridge at a time, each on the shared edge engine."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from bridges.edge import EdgeNode
from bridges.registry import build_edge_node
from model.bridges import BridgeConfig
from model.fleet import BridgeHealth
from uns.clock import now_ms
from uns.connect import ClientFactory

__all__ = ["BridgeSet", "BridgeStartError"]

log = logging.getLogger(__name__)

_WAIT_STEP_S = 0.05


class BridgeStartError(Exception):
    """A bridge could not start (its source or buffer refused, or it stopped at once); names the edge node."""

    def __init__(self, node: str, reason: str) -> None:
        self.node = node
        self.reason = reason
        super().__init__(f"bridge {node}: {reason}")


@dataclasses.dataclass(slots=True)
class _Running:
    config: BridgeConfig
    node: EdgeNode
    task: asyncio.Task[None] | None = None
    failure: str | None = None
    samples: int = 0
    last_seen_ms: int | None = None


class BridgeSet:
    """Running edge nodes keyed by edge node id, their tasks in the owner's TaskGroup.

    Args:
        clients: opens the edge nodes' MQTT clients (the agent's broker, under its account).
        data_dir: the agent's data directory; each node buffers in ``data_dir/bridges/<node>``.
        tasks: the agent's TaskGroup; a bridge that fails is recorded here, never ends the agent.
        birth_wait_s: how long a restarted bridge may take to birth before the next one is restarted.
    """

    def __init__(
        self, *, clients: ClientFactory, data_dir: Path, tasks: asyncio.TaskGroup, birth_wait_s: float = 10.0
    ) -> None:
        self._clients = clients
        self._data_dir = data_dir
        self._tasks = tasks
        self._birth_wait_s = birth_wait_s
        self._running: dict[str, _Running] = {}

    def configs(self) -> list[BridgeConfig]:
        """The configs running now, in start order."""
        return [running.config for running in self._running.values()]

    async def apply(self, configs: Sequence[BridgeConfig], *, paced: bool = True) -> None:
        """Run exactly ``configs`` (the enabled ones), one bridge at a time.

        Unchanged bridges keep running; each changed one is stopped and started again (a new session:
        NDEATH, then births) before the next is touched. ``paced=False`` does not wait for births (the
        agent's start from disk, when the broker may be away and the bridges should buffer at once).

        Raises:
            BridgeStartError: a bridge failed to start; the bridges already brought over stay as they are.
        """
        wanted = {config.node_id: config for config in configs if config.enabled}
        for node_id in [n for n in self._running if n not in wanted]:
            await self._stop(node_id)
        for node_id, config in wanted.items():
            current = self._running.get(node_id)
            if current is not None and current.config == config and current.failure is None:
                continue
            if current is not None:
                await self._stop(node_id)
            await self._start(config, paced=paced)

    async def stop_all(self) -> None:
        """Stop every bridge (NDEATH, buffers closed), newest first."""
        for node_id in reversed(list(self._running)):
            await self._stop(node_id)

    def health(self) -> list[BridgeHealth]:
        """Each bridge's health now (``last_seen_ms``: when its sample count last grew)."""
        out: list[BridgeHealth] = []
        now = now_ms()
        for node_id, running in self._running.items():
            stats = running.node.stats
            if stats.samples != running.samples:
                running.samples, running.last_seen_ms = stats.samples, now
            out.append(
                BridgeHealth(
                    node=node_id,
                    kind=running.config.kind,
                    online=stats.online,
                    buffer_depth=stats.buffer_depth,
                    samples=stats.samples,
                    births=stats.births,
                    errors=stats.errors,
                    read_latency_ms=stats.read_latency_ms,
                    last_seen_ms=running.last_seen_ms,
                    failure=running.failure,
                )
            )
        return out

    async def _start(self, config: BridgeConfig, *, paced: bool) -> None:
        node_id = config.node_id
        try:
            node = build_edge_node(config, self._clients, self._data_dir)
            await node.__aenter__()
        except Exception as exc:
            raise BridgeStartError(node_id, f"cannot start: {type(exc).__name__}: {exc}") from exc
        running = _Running(config=config, node=node)
        task = running.task = self._tasks.create_task(self._run(running), name=f"edge-agent.bridge[{node_id}]")
        self._running[node_id] = running
        log.info("edge agent: bridge %s (%s) started", node_id, config.kind)
        if paced:  # the next bridge waits for this one's births (or its failure, or the deadline)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._birth_wait_s):
                    while not node.online and not task.done():  # noqa: ASYNC110  (EdgeNode offers no event)
                        await asyncio.sleep(_WAIT_STEP_S)
        if running.failure is not None:
            raise BridgeStartError(node_id, running.failure)

    async def _run(self, running: _Running) -> None:
        try:
            await running.node.run()
        except Exception as exc:  # the bridge's top: record why, keep the agent and the other bridges
            running.failure = f"stopped: {type(exc).__name__}: {exc}"
            log.exception("edge agent: bridge %s stopped", running.node.name)

    async def _stop(self, node_id: str) -> None:
        running = self._running.pop(node_id)
        if running.task is not None:
            running.task.cancel()
            await asyncio.gather(running.task, return_exceptions=True)
        try:
            await running.node.__aexit__(None, None, None)
        except Exception:  # a source that fails to close must not stop the agent's other bridges
            log.exception("edge agent: bridge %s failed to close", node_id)
        log.info("edge agent: bridge %s stopped", node_id)
