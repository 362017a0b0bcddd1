"""One SQLite file of a demo business system: its schema created on open, reads and writes off the event loop.

The ERP, QMS and CMMS each keep their tables in a file of their own under ``<data dir>/demo/``, as
separate systems would, so they outlive ``uns up`` like the connectors' cursors do. WAL lets the
SQL source read the CMMS file from its own connection while the demo writes it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Self, TypeVar

from uns.clock import at_epoch_ms

__all__ = ["DemoDatabase", "iso_utc"]

_T = TypeVar("_T")


def iso_utc(ms: int) -> str:
    """``ms`` since 1970 as ISO 8601 UTC with milliseconds: ``2026-12-06T13:40:00.123Z``."""
    return at_epoch_ms(ms).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class DemoDatabase:
    """A SQLite file and its schema; ``async with`` opens it, ``call`` runs a function on it in a thread.

    Args:
        path: the file (its directory is created).
        schema: ``CREATE TABLE IF NOT EXISTS ...`` statements, run on open.
    """

    def __init__(self, *, path: Path, schema: str) -> None:
        self.path = path
        self._schema = schema
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, used from worker threads one at a time

    async def __aenter__(self) -> Self:
        self._connection = await asyncio.to_thread(self._open)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with self._lock:
                connection.close()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=5000")  # the SQL source reads the same file
            connection.executescript(self._schema)
        except BaseException:
            connection.close()
            raise
        return connection

    def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work(connection)`` in one transaction, on this thread (tests, and the threads ``call`` uses)."""
        connection = self._connection
        if connection is None:
            raise RuntimeError(f"{self.path.name} is not open: `async with` it first")
        with self._lock:
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return result

    async def call(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``run(work)`` in a worker thread, so the event loop never waits on the disk."""
        return await asyncio.to_thread(self.run, work)
