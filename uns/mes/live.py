"""The live picture of every cell and line (the ``current`` view), computed once and shared.

The adapter computes it every ``kpi_interval_s`` to publish the KPIs; every open dashboard asks for
the same rows. Serving the adapter's last result (``as_of`` says when it was computed) costs one
computation per interval however many pages are open. Operator input (an event not derived from
machine data: a reason, an order, an inspection) makes it stale at once, so the page that sent it
sees its effect on the next read; concurrent readers of a stale picture share one computation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

from uns.clock import at_epoch_ms, epoch_ms, utc_now
from uns.mes.downtime import CurrentRow

__all__ = ["LivePicture"]


class LivePicture:
    """The last ``current`` rows with the time they were computed; recomputed when older than ``max_age_s``."""

    def __init__(
        self,
        compute: Callable[[datetime], list[CurrentRow]],
        *,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``compute(now)`` runs in a worker thread (a DuckDB read); ``clock`` is monotonic seconds."""
        self._compute = compute
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._latest: tuple[datetime, list[CurrentRow]] | None = None
        self._computed_at = 0.0
        self._stale = False
        self.computations = 0
        """How many times the rows were computed (the adapter's KPI runs included)."""

    def invalidate(self) -> None:
        """Something the picture depends on changed: the next read computes it again."""
        self._stale = True

    async def read(self) -> tuple[datetime, list[CurrentRow]]:
        """The rows and when they were computed: the last ones while fresh, else computed now (once for all waiting)."""
        async with self._lock:
            latest = self._latest
            if latest is None or self._stale or self._clock() - self._computed_at > self._max_age_s:
                latest = await self._refresh_locked()
            return latest

    async def refresh(self) -> tuple[datetime, list[CurrentRow]]:
        """Compute the rows now (the adapter's KPI tick), keep them for readers; the instant and the rows."""
        async with self._lock:
            return await self._refresh_locked()

    async def _refresh_locked(self) -> tuple[datetime, list[CurrentRow]]:
        self._stale = False  # an invalidation while computing leaves the new result stale
        # computed as of a whole millisecond, the KPI envelope's timestamp_ms: the oee view asked up to that
        # timestamp answers what was published
        now = at_epoch_ms(epoch_ms(utc_now()))
        try:
            rows = await asyncio.to_thread(self._compute, now)
        except BaseException:
            self._stale = True
            raise
        self._latest, self._computed_at = (now, rows), self._clock()
        self.computations += 1
        return self._latest
