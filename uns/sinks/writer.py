"""The seam between the sink framework and one kind of target: a writer commits batches, or says why not.

The framework (``uns.sinks.service``) owns MQTT, batching, retries, acknowledgements and health; a
writer owns only its connection and its tables. A writer commits a whole batch or nothing, and tells
two failures apart: ``SinkUnavailable`` (the target is down: the same batch is retried with backoff)
and ``RowsRefused`` (the target refused the rows: the framework splits the batch to find the bad row,
which is dead-lettered, and the rest goes through).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from uns.historian.store import Batch

__all__ = ["SinkWriter", "WriteReport"]


@dataclasses.dataclass(frozen=True, slots=True)
class WriteReport:
    """What one committed write did."""

    inserted: int
    """Samples stored."""
    duplicates: int
    """Samples already stored (a re-delivery), ignored by the sample identity."""
    events: int = 0
    duplicate_events: int = 0
    dead_letters: int = 0
    seconds: float = 0.0

    def __add__(self, other: WriteReport) -> WriteReport:
        return WriteReport(
            inserted=self.inserted + other.inserted,
            duplicates=self.duplicates + other.duplicates,
            events=self.events + other.events,
            duplicate_events=self.duplicate_events + other.duplicate_events,
            dead_letters=self.dead_letters + other.dead_letters,
            seconds=self.seconds + other.seconds,
        )


class SinkWriter(Protocol):
    """One target of a sink (a PostgreSQL database, an InfluxDB, ...)."""

    @property
    def target(self) -> str:
        """Where it writes, without secrets (health, logs)."""
        ...

    async def connect(self) -> None:
        """(Re)connect and prepare the target (schema, tables); raises ``SinkUnavailable``."""
        ...

    async def write(self, batch: Batch, *, sink: str) -> WriteReport:
        """Commit the batch's samples, events and dead letters in one transaction.

        Raises:
            SinkUnavailable: nothing was committed; retry later (the writer reconnects on its own).
            RowsRefused: nothing was committed; some row of the batch is refused by the target.
        """
        ...

    async def aclose(self) -> None:
        """Release the connection."""
        ...
