"""Rows straight into the typed MES tables with plain SQL, for the view tests (no store, no checks)."""

from __future__ import annotations

import itertools
from datetime import datetime

import duckdb

__all__ = ["put"]

_keys = itertools.count(1)


def put(connection: duckdb.DuckDBPyConnection, table: str, *, path: str, ts: datetime, **columns: object) -> int:
    """One row of a typed MES table, with the common columns filled in; returns its event key."""
    key = next(_keys)
    row = {"event_key": key, "path": path, "line": "/".join(path.split("/")[:4]), "ts": ts}
    row |= {"source": "test", "received": ts, **columns}
    names, marks = ", ".join(row), ", ".join("?" for _ in row)
    connection.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(row.values()))  # noqa: S608 (test names)
    return key
