"""The demo's QMS: inspection and lab results in SQLite, served as a REST change feed (``GET /api/inspections``).

Each result is one record, written once (a result is not edited: a re-test is a new sample), with
the equipment path it was taken at, its characteristic, value, limits and verdict, and the order and
lot it belongs to. ``kind`` tells a line inspection from a lab result; both become the MES's
``quality_inspection``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal, Self

from starlette.routing import BaseRoute

from demo.database import DemoDatabase, iso_utc
from demo.feed import feed_route
from model.mes import Inspection, MesEvent

__all__ = ["INSPECTION_FIELDS", "QMS_FILE", "Qms", "ResultKind"]

QMS_FILE = "qms.sqlite"
"""The QMS's file in the demo's data directory."""

ResultKind = Literal["inspection", "lab"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    result_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    characteristic TEXT NOT NULL,
    value REAL,
    lower_limit REAL,
    upper_limit REAL,
    target REAL,
    unit TEXT,
    result TEXT,
    defect_type TEXT,
    severity TEXT,
    order_id TEXT,
    lot_id TEXT,
    sample_id TEXT,
    taken_ms INTEGER NOT NULL
);
"""
INSPECTION_FIELDS = tuple(name for name in Inspection.model_fields if name not in MesEvent.model_fields)
"""What a result says beyond every event's time and id: the inspection's own fields, the feed's keys."""
_OPTIONAL = INSPECTION_FIELDS[1:]  # all but the characteristic


def _record(db: sqlite3.Connection, result_id: str, kind: ResultKind, path: str, inspection: Inspection) -> bool:
    values = [getattr(inspection, name) for name in _OPTIONAL]
    values = [value.value if hasattr(value, "value") else value for value in values]  # enums as their text
    cursor = db.execute(
        f"INSERT INTO results (result_id, kind, path, characteristic, {', '.join(_OPTIONAL)}, taken_ms) "  # noqa: S608 - fixed names
        f"VALUES (?, ?, ?, ?, {', '.join('?' * len(_OPTIONAL))}, ?) ON CONFLICT (result_id) DO NOTHING",
        (result_id, kind, path, inspection.characteristic, *values, inspection.timestamp_ms),
    )
    return cursor.rowcount == 1


def _results(db: sqlite3.Connection, after: int, limit: int) -> list[dict[str, object]]:
    rows = db.execute("SELECT * FROM results WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)).fetchall()
    out: list[dict[str, object]] = []
    for row in rows:
        item = {key: row[key] for key in row.keys() if key != "taken_ms" and row[key] is not None}  # noqa: SIM118
        out.append(item | {"taken_at": iso_utc(row["taken_ms"])})
    return out


class Qms:
    """The QMS's database and its REST route; ``async with`` opens ``<directory>/qms.sqlite``."""

    def __init__(self, *, directory: Path) -> None:
        self.database = DemoDatabase(path=directory / QMS_FILE, schema=_SCHEMA)
        self.counters = {"inspection": 0, "lab": 0}

    async def __aenter__(self) -> Self:
        await self.database.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.database.__aexit__(*exc_info)

    async def record(self, result_id: str, kind: ResultKind, path: str, inspection: Inspection) -> bool:
        """Store one result taken at ``path``; False when ``result_id`` is stored already."""
        added = await self.database.call(lambda db: _record(db, result_id, kind, path, inspection))
        self.counters[kind] += added
        return added

    async def results(self, after: int, limit: int) -> list[dict[str, object]]:
        """Results recorded after change ``after`` (absent fields left out)."""
        return await self.database.call(lambda db: _results(db, after, limit))

    def routes(self) -> list[BaseRoute]:
        """``GET /api/inspections``."""
        return [feed_route("/api/inspections", self.results)]
