"""Rows waiting for their commit, and the QoS 1 messages to acknowledge once it is done.

The one batching-and-acknowledging mechanism of every consumer that stores the UNS (the DuckDB
historian, the sinks): a reader adds parsed rows and holds their messages; a flusher waits until
the batch is full (``batch_rows``) or its first row is ``flush_interval_s`` old, takes the batch and
its messages, commits, and only then acknowledges them. Past ``max_pending_rows`` the reader waits
for room, so the broker holds back the rest (back-pressure) instead of memory growing.
"""

from __future__ import annotations

import asyncio

from uns.event_wait import set_within
from uns.historian.rows import EventRow, Rejected, SampleRow
from uns.historian.store import Batch
from uns.mqtt.types import Message

__all__ = ["PendingRows"]


class PendingRows:
    """The pending batch of one consumer, shared by its reader and flusher tasks (one event loop).

    Args:
        batch_rows: rows that make a batch due at once.
        flush_interval_s: longest the first row of a batch waits.
        max_pending_rows: rows held before the reader waits for room.
    """

    def __init__(self, *, batch_rows: int, flush_interval_s: float, max_pending_rows: int) -> None:
        self._batch_rows = batch_rows
        self._interval_s = flush_interval_s
        self._max_rows = max_pending_rows
        self.batch = Batch()
        self._rows = 0  # len(self.batch), counted: a Batch's len() costs three, and add() runs per message
        self.acks: list[Message] = []
        self.writing = 0
        """Rows taken by the flusher and not yet committed (reported as pending too)."""
        self._first = 0.0
        self._has_rows = asyncio.Event()
        self._full = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return self._rows

    def add(self, row: SampleRow | EventRow | Rejected, now_ms: int) -> None:
        """Add one row to the batch (a sample with its receive time)."""
        batch = self.batch
        rows = self._rows
        if not rows:
            self._first = asyncio.get_running_loop().time()
            self._has_rows.set()
        elif rows >= self._batch_rows:
            self._full.set()
        self._rows = rows + 1
        if isinstance(row, SampleRow):
            batch.samples.append(row)
            batch.received_ms.append(now_ms)
        elif isinstance(row, EventRow):
            batch.events.append(row)
        else:
            batch.rejected.append(row)

    def hold(self, message: Message) -> None:
        """Acknowledge ``message`` with the batch its rows are in (QoS 0 needs none)."""
        if message.qos:
            self.acks.append(message)

    async def wait_room(self) -> None:
        """Return at once below ``max_pending_rows``; else once the flusher took the batch."""
        if self._rows >= self._max_rows:
            self._room.clear()
            await self._room.wait()

    async def wait_due(self) -> None:
        """Return once there are rows and they are ``batch_rows`` or the first is ``flush_interval_s`` old."""
        await self._has_rows.wait()
        await set_within(self._full, self._first + self._interval_s - asyncio.get_running_loop().time())

    def take(self) -> tuple[Batch, list[Message]]:
        """The batch and the messages to acknowledge after its commit; the next batch starts empty."""
        batch, acks = self.batch, self.acks
        self.batch, self.acks = Batch(), []
        self._rows = 0
        self._has_rows.clear()
        self._full.clear()
        self.writing = len(batch)
        return batch, acks

    def done(self) -> None:
        """The taken batch is committed (or given up): the reader may go on."""
        self.writing = 0
        self._room.set()
