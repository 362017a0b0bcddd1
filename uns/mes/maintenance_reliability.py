"""MTBF and MTTR per cell and line (ISO 22400-2 maintenance KPIs) from machine states, beside the repair orders.

Read-only: runs in a caller's thread on a DuckDB cursor. Terms as ISO 22400-2 takes them from IEC 60050-191:

- **Failure event (FE)**: a run of consecutive time at one state path whose effective state (a
  label's state when one relabels it) is an equipment failure, ``FAILURE_STATES`` 180000-189999,
  with at least some of it availability loss (``uns.mes.losses``; a failure shorter than
  ``microstop_s`` is a microstop, performance loss, and inside a planned window it is planned
  downtime: neither is a failure here). It counts in the window it starts in.
- **TTR** (time to restoration): the failure's whole length, from its start until the path leaves
  the failure state, also past the window's end (read up to ``REACH`` later, never past now). A
  failure still running then is counted (FE) but has no TTR yet (``open_failures``).
- **Operating time**: the OEE view's actual production time (producing time and microstops) of
  the cell or line in the window; TBF is the operating time between failures, so
  **MTBF = operating time / FE** (None without a failure: no estimate) and **MTTR = sum of TTR /
  restored failures**.
- A line's failures are those of its time paths as in OEE: its own states when it publishes
  any, else every cell's failures (a series line stops when any cell fails); its operating time
  is the line's.

Beside them, from the corrective (not planned) maintenance orders at or under the path closed in
the window: how many, the mean repair time (started to closed) and mean response time (opened to
started), what a CMMS reports. Each order's times are the order list's (``uns.mes.maintenance_views``): a
repair started before its order was opened (the technician was at the machine before the report was
written) has a response of 0, and counts in the mean as 0, not left out of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal

import duckdb

from model.config import MesSection
from uns.clock import span_us
from uns.mes.facts import direct_pieces, fact_pieces, plan
from uns.mes.intervals import Piece
from uns.mes.oee import OeeRow, oee
from uns.mes.paths import subtree_condition
from uns.query.timespec import checked_window

__all__ = ["FAILURE_STATES", "REACH", "ReliabilityRow", "failure_runs", "reliability"]

FAILURE_STATES = (180000, 189999)
"""Equipment failure and its sub-codes in the state catalog (``uns.mes.states``)."""
REACH = timedelta(days=7)
"""How far past the window's end a failure's end is looked for."""
_BEFORE = timedelta(microseconds=1)
"""Pieces are read from this much before the window: what state reached its start."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReliabilityRow:
    """Reliability of one cell or line over one window; seconds, None where there is nothing to average."""

    path: str
    start: datetime
    end: datetime
    operating_s: float
    """Actual production time in the window (the OEE view's)."""
    failures: int
    """Failure events starting in the window (FE)."""
    open_failures: int
    """Of those, not restored yet."""
    failure_downtime_s: float
    """Sum of the restored failures' TTR."""
    mtbf_s: float | None
    mttr_s: float | None
    repair_orders: int
    """Corrective maintenance orders at or under the path closed in the window."""
    mean_repair_s: float | None
    """Their mean started-to-closed time."""
    mean_response_s: float | None
    """Their mean opened-to-started time."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Run:
    path: str
    start: datetime
    end: datetime
    lost: bool
    """Some of it is availability loss."""


def failure_runs(found: Sequence[Piece]) -> list[tuple[str, datetime, datetime]]:
    """Failure events among ``found``: (path, start, end), by path and start.

    Consecutive failure pieces of one path (split at hour edges, labels, windows, sub-codes) are one event.
    """
    runs: list[_Run] = []
    for piece in sorted(found, key=lambda p: (p.path, p.start)):
        if not FAILURE_STATES[0] <= piece.state <= FAILURE_STATES[1]:
            continue
        last = runs[-1] if runs else None
        if last is not None and last.path == piece.path and last.end == piece.start:
            runs[-1] = dataclasses.replace(last, end=piece.end, lost=last.lost or piece.loss == "availability")
        else:
            runs.append(_Run(piece.path, piece.start, piece.end, piece.loss == "availability"))
    return [(run.path, run.start, run.end) for run in runs if run.lost]


def _pieces(
    cursor: duckdb.DuckDBPyConnection, section: MesSection, paths: Sequence[str], start: datetime, end: datetime
) -> list[Piece]:
    segments = plan(cursor, section, paths, start, end)
    return direct_pieces(cursor, section, segments, paths=paths, end=end) + fact_pieces(cursor, paths, segments)


_ORDERS = """
SELECT count(*), sum(greatest(epoch_ms(closed) - epoch_ms(started), 0)),
       sum(greatest(epoch_ms(started) - epoch_ms(opened), 0))
FROM mes_maintenance
WHERE (path = ? OR starts_with(path, ?)) AND NOT planned AND closed >= ? AND closed < ?
"""


_REPAIRED = """
SELECT DISTINCT path FROM mes_maintenance WHERE {where} AND NOT planned AND closed >= ? AND closed < ?
"""


def _repaired_machines(
    cursor: duckdb.DuckDBPyConnection, path: str, start: datetime, end: datetime, depth: int
) -> list[str]:
    """The cells (``depth`` 5) or lines (4) at or under ``path`` with corrective orders closed in the window."""
    where, params = subtree_condition("path", path or None)
    rows = cursor.execute(_REPAIRED.format(where=where), [*params, start, end]).fetchall()
    levels = [str(found).split("/") for (found,) in rows]
    return sorted({"/".join(parts[:depth]) for parts in levels if len(parts) >= depth})


def _time_paths(cursor: duckdb.DuckDBPyConnection, row: OeeRow, lines: bool) -> list[str]:
    if not lines:
        return [row.path]
    own = cursor.execute("SELECT 1 FROM mes_states WHERE path = ? LIMIT 1", [row.path]).fetchone()
    if own is not None:
        return [row.path]
    cells = cursor.execute(
        "SELECT DISTINCT path FROM mes_states WHERE starts_with(path, ?) ORDER BY path", [row.path + "/"]
    ).fetchall()
    return [str(cell) for (cell,) in cells]


def reliability(
    cursor: duckdb.DuckDBPyConnection,
    section: MesSection,
    *,
    path: str,
    start: datetime,
    end: datetime,
    now: datetime,
    by: Literal["cell", "line"] = "cell",
    output_cells: Mapping[str, str] | None = None,
    plant_outputs: Mapping[str, str] | None = None,
) -> list[ReliabilityRow]:
    """MTBF and MTTR of every cell (``by`` cell) or line (``by`` line) at or under ``path`` in ``[start, end)``.

    Time after ``now`` has not happened: the operating time is the window's up to ``now`` (a running
    shift asked in its middle), none for a window that starts after it.

    Raises:
        BadArgument: a naive or empty window.
    """
    start, end = checked_window(start, end)
    lines = by == "line"
    happened = min(end, now) > start
    rows = oee(cursor, section, path=path, start=start, end=min(end, now) if happened else end,
               by="line" if lines else "cell", output_cells=output_cells, plant_outputs=plant_outputs)  # fmt: skip
    operated = {row.path: row.actual_production_time_s if happened else 0.0 for row in rows}
    members = {row.path: _time_paths(cursor, row, lines) for row in rows}
    for machine in _repaired_machines(cursor, path, start, end, 4 if lines else 5):
        # a machine the CMMS repaired but that has sent no state or count yet: its repair orders, nothing operated
        operated.setdefault(machine, 0.0)
        members.setdefault(machine, [])
    paths = sorted({p for group in members.values() for p in group})
    data_end = min(end + REACH, now)
    # read from just before the window: a failure whose (effective) state was on then reaches the window from an
    # earlier one and joins that instant's piece, while one that begins at the start, after another state (a label
    # may turn a stop into a failure at any instant), is this window's
    runs = (
        failure_runs(_pieces(cursor, section, paths, start - _BEFORE, data_end)) if paths and data_end > start else []
    )
    found: list[ReliabilityRow] = []
    for machine, operating in sorted(operated.items()):
        mine = set(members[machine])
        # begun in the window; one reaching the window's start from before it belongs to an earlier window
        events = [(a, b) for p, a, b in runs if p in mine and start <= a < end]
        # each TTR in whole microseconds, summed and divided once: float seconds sum 120.1 + 130.2 s of failures to
        # 250.29999999999998, and 375.3 / 3 is 125.10000000000001 (test_failure_downtime_and_means_are_what_a_hand_...);
        # the operating time, the OEE row's whole microseconds as seconds, is divided once too (MTBF), and so are the
        # orders' summed milliseconds, as in the fault Pareto (test_the_mean_repair_and_response_are_divided_once_...)
        restored = [span_us(a, b) for a, b in events if b < data_end]
        repairs = cursor.execute(_ORDERS, [machine, machine + "/", start, end]).fetchone()
        count, repair_ms, response_ms = repairs if repairs is not None else (0, None, None)
        found.append(
            ReliabilityRow(
                path=machine, start=start, end=end, operating_s=operating, failures=len(events),
                open_failures=len(events) - len(restored), failure_downtime_s=sum(restored) / 1e6,
                mtbf_s=round(operating * 1_000_000) / (len(events) * 1_000_000) if events else None,
                mttr_s=sum(restored) / (len(restored) * 1_000_000) if restored else None, repair_orders=int(count),
                mean_repair_s=None if repair_ms is None else repair_ms / (1000 * count),
                mean_response_s=None if response_ms is None else response_ms / (1000 * count),
            )
        )  # fmt: skip
    return found
