"""Fill a real historian DuckDB file with plain SQL, for the maintenance tests (rollups, retention, export)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import duckdb

__all__ = ["T0", "add_samples", "add_series"]

T0 = datetime(2025, 1, 1, tzinfo=UTC)
"""A midnight, so minute and hour buckets are easy to name."""


def add_series(connection: duckdb.DuckDBPyConnection, series_id: int, topic: str, *, datatype: str = "Float") -> None:
    """One series row; path, class and metric are cut out of the UNS topic."""
    levels = topic.split("/")
    connection.execute(
        "INSERT INTO series (series_id, topic, path, class, metric, datatype, unit, first_seen)"
        " VALUES (?, ?, ?, ?, ?, ?, 'degC', ?)",
        [series_id, topic, "/".join(levels[:5]), levels[5], "/".join(levels[6:]), datatype, T0],
    )


def add_samples(
    connection: duckdb.DuckDBPyConnection,
    series_id: int,
    rows: Iterable[tuple[datetime, float | None, str]],
    *,
    received: datetime | None = None,
    value_text: str | None = None,
) -> None:
    """Samples of one series as (ts, value, quality); ``received`` defaults to the sample time."""
    connection.executemany(
        "INSERT INTO samples (series_id, ts, value, value_text, quality, historical, source, received)"
        " VALUES (?, ?, ?, ?, ?, false, 'g/n/d', ?)",
        [
            [series_id, ts, value, value_text if value is None else None, quality, received or ts]
            for ts, value, quality in rows
        ],
    )
