"""A sink's own dead letters in a local SQLite file, for targets that have no table of their own (REST).

Each letter keeps the message (topic and payload), the field and reason it was refused for, when,
and how often a replay tried it again. A letter is stored once (its identity is the hash of topic,
field and payload), so a re-delivered refused message does not pile up. Replaying deletes a letter
once the target took it. stdlib ``sqlite3``, used from one worker thread at a time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from uns.clock import now_ms
from uns.historian.rows import Rejected

__all__ = ["DeadLetter", "DeadLetters"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    identity TEXT NOT NULL UNIQUE,
    received_ms INTEGER NOT NULL,
    sink TEXT NOT NULL,
    topic TEXT NOT NULL,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload BLOB NOT NULL,
    replays INTEGER NOT NULL DEFAULT 0
)
"""


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """One stored dead letter."""

    id: int
    received_ms: int
    sink: str
    topic: str
    field: str
    reason: str
    payload: bytes
    replays: int


def _identity(row: Rejected) -> str:
    data = b"\0".join((row.topic.encode(), row.field.encode(), row.payload))
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class DeadLetters:
    """The dead-letter file of one sink (created with its folder when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        return conn

    def add(self, sink: str, rows: Sequence[Rejected]) -> int:
        """Store ``rows`` (committed on return); the number new (a letter already stored is not repeated)."""
        now = now_ms()
        conn = self._connect()
        try:
            with conn:
                before = conn.total_changes
                conn.executemany(
                    "INSERT INTO dead_letters (identity, received_ms, sink, topic, field, reason, payload)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (identity) DO NOTHING",
                    [(_identity(r), now, sink, r.topic, r.field, r.reason, r.payload) for r in rows],
                )
                return conn.total_changes - before
        finally:
            conn.close()

    def list(self, *, since_ms: int = 0, ids: Sequence[int] = ()) -> list[DeadLetter]:
        """The letters received at or after ``since_ms`` (only ``ids`` when given), oldest first."""
        if not self.path.exists():
            return []
        conn = self._connect()
        try:
            sql = "SELECT id, received_ms, sink, topic, field, reason, payload, replays FROM dead_letters"
            sql += " WHERE received_ms >= ?"
            params: list[object] = [since_ms]
            if ids:
                sql += f" AND id IN ({', '.join('?' for _ in ids)})"
                params.extend(ids)
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
            return [DeadLetter(*row) for row in rows]
        finally:
            conn.close()

    def delivered(self, letter_id: int) -> None:
        """The target took the letter on replay: forget it."""
        conn = self._connect()
        try:
            with conn:
                conn.execute("DELETE FROM dead_letters WHERE id = ?", [letter_id])
        finally:
            conn.close()

    def refused_again(self, letter_id: int, field: str, reason: str) -> None:
        """A replay was refused again: keep the letter with the new reason, counted."""
        conn = self._connect()
        try:
            with conn:
                conn.execute(
                    "UPDATE dead_letters SET field = ?, reason = ?, replays = replays + 1 WHERE id = ?",
                    [field, reason, letter_id],
                )
        finally:
            conn.close()
