"""Which order ran on a line at an instant: events that name no order are attributed by their own time.

Pure: the runs are built from work order events (``start`` and ``complete`` timestamps), never from
arrival order, so a count posted hours late (store-and-forward backfill, an ERP catching up) lands
in the order that ran when it happened. The rule is the one the OEE view's SQL applies
(``uns.mes.oee``): an order runs on the line of its first ``start`` from that start (inclusive) to
its first ``complete`` (exclusive); where runs overlap the latest started wins, and of two started at one
instant the greater order id (``ORDER BY o_start DESC, order_id DESC``).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable

__all__ = ["OrderRuns", "Run"]


@dataclasses.dataclass(slots=True)
class Run:
    """One order's run on its line, ms since 1970; ``end_ms`` None while it runs."""

    order_id: str
    line: str
    start_ms: int
    end_ms: int | None = None

    def holds(self, ts_ms: int) -> bool:
        """Whether the order ran at ``ts_ms``: start inclusive, end exclusive."""
        return self.start_ms <= ts_ms and (self.end_ms is None or ts_ms < self.end_ms)


class OrderRuns:
    """The runs of every started order, per line, looked up by instant."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._lines: dict[str, list[Run]] = {}
        """Per line, runs sorted by start."""
        self._reach: dict[str, list[float]] = {}
        """Per line, the latest end of the runs up to each index (inf while one is open): bounds the walk back."""

    def clear(self) -> None:
        """Forget every run."""
        self._runs.clear()
        self._lines.clear()
        self._reach.clear()

    def load(self, runs: Iterable[Run]) -> None:
        """Replace every run at once (a store's start), indexing each line once."""
        self.clear()
        self._runs = {run.order_id: run for run in runs}
        for line in {run.line for run in self._runs.values()}:
            self._index(line)

    def started(self, order_id: str, line: str, ts_ms: int) -> None:
        """A ``start`` of ``order_id`` at ``ts_ms``: the earliest start counts, on the line of that start."""
        run = self._runs.get(order_id)
        if run is None:
            self._runs[order_id] = Run(order_id, line, ts_ms)
            self._index(line)
        elif ts_ms < run.start_ms:
            old = run.line
            run.start_ms, run.line = ts_ms, line
            self._index(old)
            self._index(line)

    def completed(self, order_id: str, ts_ms: int) -> None:
        """A ``complete`` of ``order_id`` at ``ts_ms``: the earliest complete ends the run."""
        run = self._runs.get(order_id)
        if run is not None and (run.end_ms is None or ts_ms < run.end_ms):
            run.end_ms = ts_ms
            self._index(run.line)

    def at(self, line: str, ts_ms: int) -> str | None:
        """The order running on ``line`` at ``ts_ms``, or None."""
        runs = self._lines.get(line)
        if not runs:
            return None
        reach = self._reach[line]
        index = bisect.bisect_right(runs, ts_ms, key=lambda run: run.start_ms) - 1
        while index >= 0 and reach[index] > ts_ms:
            if runs[index].holds(ts_ms):
                return runs[index].order_id
            index -= 1
        return None

    def run(self, order_id: str) -> Run | None:
        """The run of ``order_id`` (None before its first start)."""
        return self._runs.get(order_id)

    def running(self) -> dict[str, str]:
        """Line -> the order running there now: of the runs not completed, the latest started."""
        found: dict[str, Run] = {}
        for run in self._runs.values():
            if run.end_ms is None and (
                run.line not in found
                or (run.start_ms, run.order_id) > (found[run.line].start_ms, found[run.line].order_id)
            ):
                found[run.line] = run
        return {line: run.order_id for line, run in found.items()}

    def _index(self, line: str) -> None:
        runs = sorted(
            (run for run in self._runs.values() if run.line == line), key=lambda run: (run.start_ms, run.order_id)
        )
        reach: list[float] = []
        latest = float("-inf")
        for run in runs:
            latest = max(latest, float("inf") if run.end_ms is None else float(run.end_ms))
            reach.append(latest)
        self._lines[line], self._reach[line] = runs, reach
