"""What an edge node's replay sends after its births: the disk buffer in chunks, a dying device's history first.

The node sends each ``Step`` under its lock and calls ``Step.sent`` once it went out, then lets readings in
before the next: a reading waits for one step at most. Sparkplug has a device's DATA between its DBIRTH and
its DDEATH only, so a born device that is down (it stopped answering during the replay, or its history
re-births it while it is down) gets its history still queued first, ahead of the backlog's turn (the buffer
then passes over it), and its DDEATH right after, not at the end of the whole backlog.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from bridges.edge.buffer import BufferedBatch, DiskBuffer
from bridges.edge.health import EdgeHealth
from bridges.edge.journal import Journal
from bridges.edge.session import EdgeSession
from uns.mqtt.types import Message

__all__ = ["Backlog", "Step"]

_CHUNK_BATCHES = 200


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """Messages to publish in order; ``sent()`` once they went out (journal, buffer progress, counters)."""

    messages: list[Message]
    samples: int
    """Buffered samples the messages carry."""
    sent: Callable[[], None]


class Backlog:
    """The replay of one edge node's buffer, a ``Step`` at a time.

    Args:
        core: the node's session (births, DATA, deaths).
        buffer: the disk buffer replayed.
        journal: the replay window; every batch sent is recorded in it.
        health: the node's counters (``replayed``) and problems.
    """

    def __init__(self, *, core: EdgeSession, buffer: DiskBuffer, journal: Journal, health: EdgeHealth) -> None:
        self._core = core
        self._buffer = buffer
        self._journal = journal
        self._health = health
        self._burying: dict[str, tuple[int, int] | None] = {}  # dying device -> where the scan of its history goes on

    def restart(self) -> None:
        """A new session: the last one's dying devices are down and not born in this one."""
        self._burying.clear()

    def dying(self, device: str) -> bool:
        """A device known to be down whose DBIRTH stands (no DDEATH yet in this session)."""
        return self._core.is_down(device) and self._core.is_born(device)

    def bury(self, device: str) -> None:
        """``device`` died during the replay: its history still queued, then its DDEATH, come next."""
        self._burying.setdefault(device, None)

    def next(self, *, now_ms: int) -> Step | None:
        """The next step: a dying device's, else the buffer's next chunk; None once the buffer is replayed."""
        if self._burying:
            return self._bury_step(now_ms)
        chunk = self._buffer.read(_CHUNK_BATCHES)
        if not chunk.batches:
            self._buffer.commit(chunk)  # past records sent ahead of their turn, if any
            return None
        messages, samples = self.history(chunk.batches, now_ms=now_ms)

        def sent() -> None:
            # journal first: killed between the two, the chunk is then in both (sent twice, deduped by the
            # consumers), never in neither (lost if the hub had not yet taken it)
            for batch in chunk.batches:
                self._journal.record(batch, now_ms=now_ms)
            self._buffer.commit(chunk)
            self._health.counts["replayed"] += samples
            # a device down at the births that its history just re-born: buried next, not after the backlog
            for device in dict.fromkeys(batch.device for batch in chunk.batches):
                if self.dying(device):
                    self.bury(device)

        return Step(messages, samples, sent)

    def history(self, batches: Sequence[BufferedBatch], *, now_ms: int) -> tuple[list[Message], int]:
        """Buffered batches as historical DATA (a device not born is born first), and the samples sent.

        A sample of a device or metric the node no longer has is dropped, counted and named, not sent.
        """
        out: list[Message] = []
        count = 0
        core = self._core
        for batch in batches:
            history = core.not_in_birth(batch.device, batch.metrics)
            out += core.data(batch.device, history, now_ms=now_ms, historical=True)
            gone = core.unknown(batch.device, history)
            for name in gone:  # no tag to send it as: dropped, counted and named, not counted replayed
                self._health.count_problem(
                    f"buffered sample of device {batch.device!r} metric {name!r} dropped: "
                    "not a tag of this edge node (buffered under another config)"
                )
            count += len(history) - len(gone)
        return out, count

    def _bury_step(self, now_ms: int) -> Step:
        """Some of a dying device's history (as many batches as a chunk at most); the last step adds its DDEATH.

        A device that answers again meanwhile stays alive: the rest of its history goes in the backlog's turn.
        """
        device, start = next(iter(self._burying.items()))
        if not self.dying(device):
            del self._burying[device]
            return Step([], 0, lambda: None)
        taken = self._buffer.of_device(device, max_batches=_CHUNK_BATCHES, start=start)
        messages, samples = self.history(taken.batches, now_ms=now_ms)
        if taken.next is None:
            death = self._core.device_down(device, now_ms=now_ms, publish=True)
            messages += [death] if death is not None else []

        def sent() -> None:
            for batch in taken.batches:
                self._journal.record(batch, now_ms=now_ms)
            self._buffer.skip(taken)
            self._health.counts["replayed"] += samples
            if taken.next is None:
                self._burying.pop(device, None)
            else:
                self._burying[device] = taken.next

        return Step(messages, samples, sent)
