"""The Source protocol: what every protocol bridge implements, and the values it produces.

A Source talks to machines (Modbus, OPC UA, JSON over MQTT, ...) and nothing else. The EdgeNode
(``bridges/edge.py``) turns what a Source reports into Sparkplug B: births, data, deaths, seq,
aliases, store-and-forward. Sources never touch MQTT or Sparkplug encoding.

``SourceTasks`` runs the tasks behind a source's ``events()`` and carries their items and crashes to it;
``poll_rounds`` is the loop of a polled group (Modbus, the PLC drivers).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Generic, Protocol, Self, TypeVar

from model.envelope import Quality
from uns.sparkplug import DataType, MetricValue

__all__ = [
    "DeviceDown",
    "PollClock",
    "Sample",
    "Samples",
    "Source",
    "SourceEvent",
    "SourceTasks",
    "TagSpec",
    "poll_rounds",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True, slots=True)
class TagSpec:
    """One metric a source provides: declared in the device's DBIRTH."""

    device: str
    """Sparkplug device id the tag belongs to."""
    name: str
    """Sparkplug metric name; ``/`` makes levels (``Production/GoodCount``)."""
    datatype: DataType
    unit: str | None = None
    writable: bool = False
    """A DCMD may write it (holding registers, coils, writable OPC UA variables)."""
    deadband: float = 0.0
    """Report by exception: a numeric change smaller than this (absolute) is not sent."""
    description: str = ""
    transient: bool = False
    """Live only, not to be historized: Sparkplug's ``is_transient`` in the DBIRTH and every DDATA. The edge
    engine sets it from the bridge's ``edge.transient_tags``; a source may set it itself."""


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one tag."""

    name: str
    value: MetricValue
    """``None`` when the reading failed (quality ``bad``)."""
    timestamp_ms: int
    quality: Quality = Quality.good


@dataclasses.dataclass(frozen=True, slots=True)
class Samples:
    """Readings of one device, taken together (one poll group, or one subscription notification)."""

    device: str
    samples: Sequence[Sample]


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceDown:
    """The device stopped answering (the EdgeNode sends DDEATH; the next ``Samples`` re-births it).

    ``awaited``: it has not been up since the source started and comes on its own (an LwM2M client before
    its first Register): not a problem yet, so the edge node logs it at INFO, where a device lost is a WARNING.
    Either way it is down: no DBIRTH until its first ``Samples``.
    """

    device: str
    reason: str
    awaited: bool = False


SourceEvent = Samples | DeviceDown


class Source(Protocol):
    """A connection to one or more devices of one protocol.

    ``async with source:`` prepares it (validate, open what must be open; a device that is down at
    start is not an error: it is reported as ``DeviceDown`` and retried). ``tags()`` is final once
    entered. ``events()`` runs the polling or subscriptions until cancelled.
    """

    name: str
    """The bridge's name, for logs and errors."""

    async def __aenter__(self) -> Self:
        """Prepare the source."""
        ...

    async def __aexit__(self, *exc_info: object) -> None:
        """Close every connection."""
        ...

    def tags(self) -> Sequence[TagSpec]:
        """Every tag of every device, in birth order."""
        ...

    def events(self) -> AsyncIterator[SourceEvent]:
        """Readings and device failures as they happen, until cancelled."""
        ...

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """Write a value (from a DCMD); raises ``uns.errors.BridgeError`` naming device and address."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class _Crash:
    error: BaseException


class SourceTasks(Generic[_T]):
    """The tasks behind a source's ``events()`` and the one queue they feed it (items of type ``_T``).

    A generator its consumer may abandon cannot hold a TaskGroup across its yields, so a source starts
    its producers here and calls ``stop()`` when ``events()`` closes and when the source exits. A
    producer's crash is logged once and raised from ``get()`` after what was queued before it; with a
    bounded queue that is full it is raised from the next ``get()`` instead of being lost.

    Args:
        owner: prefix of the tasks' names, e.g. ``serial[scales]``.
        maxsize: the queue's bound (0: unbounded); producers wait on ``put`` while it is full.
    """

    def __init__(self, owner: str, *, maxsize: int = 0) -> None:
        self._owner = owner
        self._queue: asyncio.Queue[_T | _Crash] = asyncio.Queue(maxsize)
        self._tasks: list[asyncio.Task[None]] = []
        self._overflowed: BaseException | None = None

    def start(self, coroutine: Coroutine[None, None, None], what: str) -> None:
        """Run ``coroutine`` as the task ``<owner>.<what>`` until ``stop()``."""
        task = asyncio.create_task(coroutine, name=f"{self._owner}.{what}")
        task.add_done_callback(self._crashed)
        self._tasks.append(task)

    async def put(self, item: _T) -> None:
        """Queue an item, waiting while the queue is full."""
        await self._queue.put(item)

    def put_nowait(self, item: _T) -> None:
        """Queue an item now; raises ``asyncio.QueueFull`` when the queue is full."""
        self._queue.put_nowait(item)

    def qsize(self) -> int:
        """Items waiting for ``get()``."""
        return self._queue.qsize()

    async def get(self) -> _T:
        """The next item; raises a producer's crash."""
        if (overflowed := self._overflowed) is not None:
            self._overflowed = None
            raise overflowed
        item = await self._queue.get()
        if isinstance(item, _Crash):
            raise item.error
        return item

    async def stop(self) -> None:
        """Cancel every task and wait for them to end."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _crashed(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or (error := task.exception()) is None:
            return
        log.error("%s crashed: %r", task.get_name(), error, exc_info=error)
        try:
            self._queue.put_nowait(_Crash(error))
        except asyncio.QueueFull:
            self._overflowed = error


class PollClock:
    """When a poll group's next round starts: every ``interval_s`` from the last (re)connection."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.next_at = time.monotonic()

    def restart(self) -> None:
        """A connection was just opened: rounds count from now."""
        self.next_at = time.monotonic()

    async def wait(self) -> None:
        """Sleep until the next round; after a slow round it starts at once rather than bursting to catch up."""
        self.next_at += self.interval_s
        now = time.monotonic()
        if self.next_at < now:
            self.next_at = now
        await asyncio.sleep(self.next_at - now)


async def poll_rounds(interval_s: float, read_round: Callable[[PollClock], Awaitable[bool]]) -> None:
    """Run ``read_round`` until cancelled: after a round that read (True) wait for the next, retry a lost one at once.

    A lost round (False) returns only after its link's backoff, which is the link's job.
    """
    clock = PollClock(interval_s)
    me = asyncio.current_task()
    while True:
        if me is not None and me.cancelling():
            # Python 3.11's asyncio.wait_for (inside pymodbus and some PLC client libraries) swallows a
            # cancel that races a response; without this check the poll loop would outlive its source
            raise asyncio.CancelledError
        if await read_round(clock):
            await clock.wait()
