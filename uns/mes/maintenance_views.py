"""The maintenance views of work orders: the order list a planner filters, and the fault-code Pareto.

Read-only: every function takes a DuckDB cursor and runs in a caller's thread. Both read the view
``mes_maintenance`` (MES schema version 6, ``uns.mes.schema``): each order as its versions add up to
(``model.mes.MaintenanceOrder``).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, tzinfo
from typing import Literal

import duckdb

from uns.mes.paths import subtree_condition
from uns.query.timespec import checked_window

__all__ = [
    "MAX_ORDERS",
    "FaultBar",
    "MaintenanceKind",
    "MaintenanceRow",
    "MaintenanceStatusFilter",
    "fault_pareto",
    "maintenance_orders",
]

MAX_ORDERS = 1000
"""The most orders one ``maintenance_orders`` call answers."""

MaintenanceStatusFilter = Literal["any", "open", "opened", "started", "closed", "cancelled"]
"""``open`` is opened or started: work not done yet."""
MaintenanceKind = Literal["any", "planned", "corrective"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceRow:
    """One maintenance work order as its versions add up to."""

    maintenance_id: str
    path: str
    """The machine: the equipment path of its newest version."""
    line: str
    status: str
    planned: bool
    fault_code: str | None
    description: str | None
    technician: str | None
    priority: int | None
    opened: datetime
    started: datetime | None
    closed: datetime | None
    """When work ended; None unless the order is closed."""
    planned_start: datetime | None
    planned_end: datetime | None
    updated: datetime
    """The newest version's timestamp."""
    versions: int
    closes_left_out: int
    """Versions read for the close (the last saying other than closed and those after it) whose ``closed_ms`` was
    before the last reopen (an old close time re-sent, or kept in the reopening row): not its close."""
    response_s: float | None
    """Opened to started."""
    repair_s: float | None
    """Started to closed: the active repair time."""
    age_s: float | None
    """Opened to now, for an order not closed or cancelled."""


_STATUS = {
    "any": "true",
    "open": "status IN ('opened', 'started')",
    "opened": "status = 'opened'",
    "started": "status = 'started'",
    "closed": "status = 'closed'",
    "cancelled": "status = 'cancelled'",
}
_KIND = {"any": "true", "planned": "planned", "corrective": "NOT planned"}

_ORDERS = """
SELECT maintenance_id, path, line, status, planned, fault_code, description, technician, priority,
       opened, started, closed, planned_start, planned_end, updated, versions, closes_left_out
FROM mes_maintenance
WHERE {where} AND {status} AND {kind} AND (?::VARCHAR IS NULL OR fault_code = ?)
  AND least(opened, coalesce(planned_start, opened)) < ?
  AND (closed >= ? OR (closed IS NULL AND (status <> 'cancelled' OR updated >= ?)))
ORDER BY opened DESC, maintenance_id
LIMIT ?
"""


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max((later - earlier).total_seconds(), 0.0)


def maintenance_orders(
    cursor: duckdb.DuckDBPyConnection,
    *,
    path: str | None,
    start: datetime,
    end: datetime,
    now: datetime,
    status: MaintenanceStatusFilter = "any",
    kind: MaintenanceKind = "any",
    fault_code: str | None = None,
    limit: int = 100,
    tz: tzinfo = UTC,
) -> list[MaintenanceRow]:
    """Orders at or under ``path`` (anywhere when None) alive in ``[start, end)``, newest opened first.

    Alive: opened (or scheduled) before ``end`` and not closed or cancelled before ``start``; so a
    window shows what was open in it and what was done in it.

    Raises:
        BadArgument: a naive or empty time range, or an empty path.
    """
    low, high = checked_window(start, end)
    where, params = subtree_condition("path", path)
    sql = _ORDERS.format(where=where, status=_STATUS[status], kind=_KIND[kind])
    rows = cursor.execute(sql, [*params, fault_code, fault_code, high, low, low, min(limit, MAX_ORDERS)]).fetchall()
    found = []
    for row in rows:
        (mid, at, line, state, planned, fault, text, who, priority, opened, started, closed, p_start, p_end,
         updated, versions, left_out) = row  # fmt: skip
        alive = state in ("opened", "started")
        found.append(
            MaintenanceRow(
                maintenance_id=mid, path=at, line=line, status=state, planned=bool(planned), fault_code=fault,
                description=text, technician=who, priority=priority, opened=opened.astimezone(tz),
                started=None if started is None else started.astimezone(tz),
                closed=None if closed is None else closed.astimezone(tz),
                planned_start=None if p_start is None else p_start.astimezone(tz),
                planned_end=None if p_end is None else p_end.astimezone(tz), updated=updated.astimezone(tz),
                versions=int(versions), closes_left_out=int(left_out), response_s=_seconds(started, opened),
                repair_s=_seconds(closed, started),
                age_s=_seconds(now, opened) if alive else None,
            )
        )  # fmt: skip
    return found


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FaultBar:
    """One fault code's orders in the window: how often, and how long."""

    fault_code: str | None
    """None: orders without a fault code."""
    orders: int
    closed: int
    open: int
    """Orders not closed yet (opened or started)."""
    duration_s: float
    """Sum over its closed orders of opened to closed: the time from the report to the machine handed back."""
    repair_s: float
    """Sum over its closed orders of started to closed: the active repair time (0 for one closed before its start,
    as the order list and the reliability view count it)."""
    mean_duration_s: float | None
    mean_repair_s: float | None
    share: float | None
    """Its part of all ``duration_s`` of the Pareto (None when all are 0)."""
    cumulative_share: float | None
    count_share: float
    """Its part of all orders."""


_FAULTS = """
SELECT fault_code, count(*), count(closed), count(*) FILTER (WHERE status IN ('opened', 'started')),
       coalesce(sum(epoch_ms(closed) - epoch_ms(opened)) FILTER (WHERE closed >= opened), 0),
       coalesce(sum(greatest(epoch_ms(closed) - epoch_ms(started), 0)), 0),
       count(*) FILTER (WHERE closed IS NOT NULL AND started IS NOT NULL)
FROM mes_maintenance
WHERE {where} AND {kind} AND status <> 'cancelled' AND opened >= ? AND opened < ?
GROUP BY fault_code
"""


def fault_pareto(
    cursor: duckdb.DuckDBPyConnection,
    *,
    path: str | None,
    start: datetime,
    end: datetime,
    kind: MaintenanceKind = "corrective",
    rank: Literal["time", "count"] = "time",
) -> list[FaultBar]:
    """Orders opened in ``[start, end)`` at or under ``path`` per fault code, the largest first (cancelled left out).

    ``rank``: by ``duration_s`` (then count) or by count (then duration). ``kind``: corrective
    orders by default (the faults); ``any`` or ``planned`` for the others.

    Raises:
        BadArgument: a naive or empty time range, or an empty path.
    """
    low, high = checked_window(start, end)
    where, params = subtree_condition("path", path)
    rows = cursor.execute(_FAULTS.format(where=where, kind=_KIND[kind]), [*params, low, high]).fetchall()
    bars = [(code, int(n), int(done), int(waiting), int(total_ms), int(repair_ms), int(repaired))
            for code, n, done, waiting, total_ms, repair_ms, repaired in rows]  # fmt: skip
    if rank == "time":
        bars.sort(key=lambda bar: (-bar[4], -bar[1], bar[0] or ""))
    else:
        bars.sort(key=lambda bar: (-bar[1], -bar[4], bar[0] or ""))
    total_ms = sum(bar[4] for bar in bars)
    count = sum(bar[1] for bar in bars)
    found: list[FaultBar] = []
    running = 0
    for code, n, done, waiting, duration_ms, repair_ms, repaired in bars:
        running += duration_ms
        found.append(
            FaultBar(
                fault_code=code, orders=n, closed=done, open=waiting, duration_s=duration_ms / 1000,
                repair_s=repair_ms / 1000, mean_duration_s=duration_ms / (1000 * done) if done else None,
                mean_repair_s=repair_ms / (1000 * repaired) if repaired else None,
                share=duration_ms / total_ms if total_ms else None,
                cumulative_share=running / total_ms if total_ms else None, count_share=n / count,
            )
        )  # fmt: skip
    return found
