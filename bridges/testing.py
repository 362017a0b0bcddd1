"""A scripted Source for tests: a stand-in for a machine whose readings the test pushes by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Self

from bridges.source import DeviceDown, Sample, Samples, SourceEvent, TagSpec
from model.envelope import Quality
from uns.clock import now_ms
from uns.errors import BridgeError
from uns.sparkplug import MetricValue

__all__ = ["ScriptedSource"]


class ScriptedSource:
    """A ``Source`` whose events come from ``push``/``read``/``down``, and whose writes are recorded.

    Args:
        name: the bridge name.
        tags: what ``tags()`` returns.
        failing_writes: metric names whose writes raise ``BridgeError`` (a device refusing them).
    """

    def __init__(self, *, name: str, tags: Sequence[TagSpec], failing_writes: Sequence[str] = ()) -> None:
        self.name = name
        self._tags = list(tags)
        self._failing = set(failing_writes)
        self._queue: asyncio.Queue[SourceEvent] = asyncio.Queue()
        self.writes: list[tuple[str, str, MetricValue]] = []
        self.entered = 0
        self.exited = 0

    async def __aenter__(self) -> Self:
        self.entered += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.exited += 1

    def tags(self) -> Sequence[TagSpec]:
        """Every tag, in birth order."""
        return self._tags

    async def events(self) -> AsyncIterator[SourceEvent]:
        """What was pushed, in order, until cancelled."""
        while True:
            yield await self._queue.get()

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """Record the write, or refuse it for a name in ``failing_writes``."""
        if name in self._failing:
            raise BridgeError(self.name, f"scripted/{device}", f"{name}: write refused by the device")
        self.writes.append((device, name, value))

    def push(self, event: SourceEvent) -> None:
        """Queue one event."""
        self._queue.put_nowait(event)

    def read(
        self,
        device: str,
        values: dict[str, MetricValue],
        *,
        timestamp_ms: int | None = None,
        quality: Quality = Quality.good,
    ) -> None:
        """Queue one ``Samples`` of ``device`` with ``values`` by metric name."""
        ts = now_ms() if timestamp_ms is None else timestamp_ms
        self.push(Samples(device, [Sample(name, value, ts, quality) for name, value in values.items()]))

    def down(self, device: str, reason: str = "scripted: no answer") -> None:
        """Queue a ``DeviceDown``."""
        self.push(DeviceDown(device, reason))

    @property
    def pending(self) -> int:
        """Events pushed and not yet taken by the edge node."""
        return self._queue.qsize()
