"""What a SQL source keeps between runs: each query's cursor and its dead letters, in one small SQLite file.

A batch's cursor and the dead letters of its refused rows are written in one SQLite transaction
(journal, ``synchronous=FULL``): after a crash the file holds either the batch's new cursor and its
dead letters, or neither.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from bridges.sql.statement import RowCursor, decode_value, encode_value

__all__ = ["DeadLetter", "SqlState"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    query TEXT PRIMARY KEY,
    cursor TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    connector TEXT NOT NULL,
    query TEXT NOT NULL,
    row_key TEXT NOT NULL,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    row TEXT NOT NULL
);
"""


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """A row that did not map: which connector, query, row and field, why, and the row itself (JSON)."""

    connector: str
    query: str
    row_key: str
    field: str
    reason: str
    row: str


class SqlState:
    """The state file of one SQL source (``sql-state.sqlite`` in its edge node's directory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except sqlite3.Error:
            db.close()
            raise
        self._db = db
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"SQL state {self.path}: not open")
        return self._db

    def cursor(self, query: str) -> RowCursor | None:
        """The last row ``query`` emitted, or None if it has emitted none."""
        row = self._conn.execute("SELECT cursor FROM cursors WHERE query = ?", (query,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return RowCursor(watermark=decode_value(data["watermark"]), key=tuple(decode_value(v) for v in data["key"]))

    def commit(self, query: str, cursor: RowCursor, dead: Sequence[DeadLetter], *, now_ms: int) -> None:
        """Advance ``query``'s cursor and store ``dead``, in one transaction."""
        text = json.dumps({"watermark": encode_value(cursor.watermark), "key": [encode_value(v) for v in cursor.key]})
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO dead_letters (received_ms, connector, query, row_key, field, reason, row) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(now_ms, d.connector, d.query, d.row_key, d.field, d.reason, d.row) for d in dead],
            )
            db.execute(
                "INSERT INTO cursors (query, cursor, updated_ms) VALUES (?, ?, ?) "
                "ON CONFLICT (query) DO UPDATE SET cursor = excluded.cursor, updated_ms = excluded.updated_ms",
                (query, text, now_ms),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters, newest first."""
        rows = self._conn.execute(
            "SELECT connector, query, row_key, field, reason, row FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [DeadLetter(*row) for row in rows]
