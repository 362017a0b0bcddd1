"""Maintenance work orders into ``mes_maintenance_orders``: the row of one version, and what it changes.

Every version of an order is a row (its ``event_key`` as for every MES event, so a re-delivered
version lands once); the views ``mes_maintenance`` (MES schema version 6, ``uns.mes.schema``) and
``mes_maintenance_windows`` (version 3, read through the first) merge them. A version of a planned
order moves planned downtime: the time from the earliest instant any version of the order named (a
rescheduled window frees its old span too) on, at every path the order was ever at (a corrected
machine frees the old one), is announced as changed.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import duckdb

from model.mes import MaintenanceOrder, MesEvent
from uns.clock import at_epoch_ms
from uns.mes.changes import Change

__all__ = ["EVENT", "TABLE", "maintenance_changes", "maintenance_row"]

EVENT = "maintenance_order"
"""The event name after ``mes/``."""
TABLE = "mes_maintenance_orders"
"""Where its versions are stored."""


def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else at_epoch_ms(ms)


def maintenance_row(body: MesEvent, order_id: str | None) -> tuple[tuple[str, ...], list[object]]:
    """The version's own columns and values (``order_id`` is unused: it names no production order)."""
    assert isinstance(body, MaintenanceOrder)  # noqa: S101 - dispatched by type
    columns = (
        "maintenance_id",
        "status",
        "planned",
        "fault_code",
        "description",
        "technician",
        "priority",
        "opened",
        "started",
        "closed",
        "planned_start",
        "planned_end",
    )
    times = (body.opened_ms, body.started_ms, body.closed_ms, body.planned_start_ms, body.planned_end_ms)
    values: list[object] = [body.maintenance_id, body.status.value, body.planned, body.fault_code]
    values += [body.description, body.technician, body.priority, *(_ts(ms) for ms in times)]
    return columns, values


def maintenance_changes(connection: duckdb.DuckDBPyConnection, maintenance_ids: Collection[str]) -> list[Change]:
    """What stored versions of ``maintenance_ids`` change: one query per batch, read inside its transaction.

    Every change runs from its start on (a running order's window is open), so per path the earliest
    start of any of its orders covers them all: one change per path.
    """
    if not maintenance_ids:
        return []
    rows = connection.execute(
        """WITH since AS (
               SELECT maintenance_id, min(least(ts, opened, started, closed, planned_start, planned_end)) AS t
               FROM mes_maintenance_orders WHERE maintenance_id IN (SELECT unnest(?::VARCHAR[]))
               GROUP BY maintenance_id)
           SELECT DISTINCT o.path, epoch_ms(min(since.t) OVER (PARTITION BY o.path))
           FROM mes_maintenance_orders o JOIN since USING (maintenance_id) ORDER BY 1""",
        [sorted(set(maintenance_ids))],
    ).fetchall()
    return [Change(event=EVENT, path=str(path), start_ms=int(since), end_ms=None) for path, since in rows]
