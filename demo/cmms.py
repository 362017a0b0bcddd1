"""The demo's CMMS: maintenance work orders in a SQLite table, read by the SQL source with an ``updated_at`` watermark.

One row per work order, rewritten in place as it moves (opened, started, closed), its
``updated_at`` set on every change, as a CMMS's order table is. Times are stored as the CMMS's
naive ``DATETIME`` text in UTC with microseconds (``2026-12-06 13:40:00.123456``), which sorts as
it reads; ``updated_at`` grows strictly, so every change is a new watermark value.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Self

from demo.database import DemoDatabase
from demo.maintenance import WorkOrderRow
from uns.clock import at_epoch_ms, nearest_epoch_ms

__all__ = ["CMMS_FILE", "CMMS_TABLE", "Cmms", "db_time"]

CMMS_FILE = "cmms.sqlite"
"""The CMMS's file in the demo's data directory."""
CMMS_TABLE = "maintenance_work_orders"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {CMMS_TABLE} (
    wo_id TEXT PRIMARY KEY,
    machine_path TEXT NOT NULL,
    kind TEXT NOT NULL,
    planned INTEGER NOT NULL,
    status TEXT NOT NULL,
    description TEXT,
    priority INTEGER,
    fault_code TEXT,
    technician TEXT,
    opened_at TEXT NOT NULL,
    started_at TEXT,
    closed_at TEXT,
    planned_start TEXT,
    planned_end TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {CMMS_TABLE}_updated ON {CMMS_TABLE} (updated_at, wo_id);
"""
_COLUMNS = (
    "wo_id",
    "machine_path",
    "kind",
    "planned",
    "status",
    "description",
    "priority",
    "fault_code",
    "technician",
    "opened_at",
    "started_at",
    "closed_at",
    "planned_start",
    "planned_end",
    "updated_at",
)


_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def db_time(ms: int | None) -> str | None:
    """``ms`` since 1970 as the CMMS stores a time: naive UTC text with microseconds."""
    if ms is None:
        return None
    return at_epoch_ms(ms).strftime(_FORMAT)


def _ms(text: str | None) -> int | None:
    if text is None:
        return None
    return nearest_epoch_ms(datetime.strptime(text, _FORMAT).replace(tzinfo=UTC))


def _open_orders(db: sqlite3.Connection) -> list[WorkOrderRow]:
    rows = db.execute(
        f"SELECT * FROM {CMMS_TABLE} WHERE status IN ('opened', 'started') ORDER BY updated_at, wo_id"  # noqa: S608
    ).fetchall()
    return [
        WorkOrderRow(
            wo_id=row["wo_id"], machine_path=row["machine_path"], kind=row["kind"], status=row["status"],
            description=row["description"], priority=row["priority"], fault_code=row["fault_code"],
            technician=row["technician"], opened_ms=_ms(row["opened_at"]) or 0, started_ms=_ms(row["started_at"]),
            closed_ms=_ms(row["closed_at"]), planned_start_ms=_ms(row["planned_start"]),
            planned_end_ms=_ms(row["planned_end"]), changed_ms=_ms(row["updated_at"]) or 0,
        )
        for row in rows
    ]  # fmt: skip


def _write(db: sqlite3.Connection, row: WorkOrderRow) -> None:
    (last,) = db.execute(f"SELECT max(updated_at) FROM {CMMS_TABLE}").fetchone()  # noqa: S608 - fixed name
    stamp = db_time(row.changed_ms) or ""
    if last is not None and stamp <= last:  # strictly growing: one change, one watermark value
        stamp = (datetime.strptime(last, _FORMAT) + timedelta(microseconds=1)).strftime(_FORMAT)
    values = (
        row.wo_id,
        row.machine_path,
        row.kind,
        int(row.kind == "preventive"),
        row.status,
        row.description,
        row.priority,
        row.fault_code,
        row.technician,
        db_time(row.opened_ms),
        db_time(row.started_ms),
        db_time(row.closed_ms),
        db_time(row.planned_start_ms),
        db_time(row.planned_end_ms),
        stamp,
    )
    updates = ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS[1:])
    db.execute(
        f"INSERT INTO {CMMS_TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "  # noqa: S608
        f"ON CONFLICT (wo_id) DO UPDATE SET {updates}",
        values,
    )


class Cmms:
    """The CMMS's work order table; ``async with`` opens ``<directory>/cmms.sqlite``."""

    def __init__(self, *, directory: Path) -> None:
        self.database = DemoDatabase(path=directory / CMMS_FILE, schema=_SCHEMA)
        self.counters = {"written": 0}

    @property
    def url(self) -> str:
        """The SQLAlchemy URL the SQL source reads it with."""
        return f"sqlite+aiosqlite:///{self.database.path}"

    async def __aenter__(self) -> Self:
        await self.database.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.database.__aexit__(*exc_info)

    async def open_orders(self) -> list[WorkOrderRow]:
        """The work orders not closed yet (a previous run's), oldest change first."""
        return await self.database.call(_open_orders)

    async def write(self, row: WorkOrderRow) -> None:
        """Create or update the work order ``row.wo_id`` (its ``updated_at`` moves on)."""
        await self.database.call(lambda db: _write(db, row))
        self.counters["written"] += 1
