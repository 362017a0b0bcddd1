"""Fill a real historian DuckDB file with plain SQL for the query tests (History, HTTP API, CLI)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import duckdb
import orjson

from uns.store.database import Database

__all__ = ["LINE", "Filler", "open_database"]

LINE = "acme/dallas/bottling/line1"
"""The equipment path of the demo line most fixtures use."""

_Sample = tuple[datetime, object]  # the value: a number, bool, str, list or dict, or None


def open_database(path: Path) -> Database:
    """A migrated, open historian database at ``path``; close it when done."""
    database = Database(path=path)
    database.open()
    return database


class Filler:
    """Adds series, samples, latest values, MES events and dead letters through SQL INSERTs."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self._connection = connection
        self._ids = itertools.count(1)

    def series(
        self, topic: str, datatype: str | None = "Float", *, unit: str | None = None, first_seen: datetime
    ) -> int:
        """One series row; path, class and metric are cut out of the UNS topic at its class word."""
        levels = topic.split("/")
        at = next(i for i, level in enumerate(levels) if level in ("data", "kpi"))
        series_id = next(self._ids)
        self._connection.execute(
            "INSERT INTO series (series_id, topic, path, class, metric, datatype, unit, first_seen)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                series_id,
                topic,
                "/".join(levels[:at]),
                levels[at],
                "/".join(levels[at + 1 :]),
                datatype,
                unit,
                first_seen,
            ],
        )
        return series_id

    def samples(self, series_id: int, rows: Iterable[_Sample], *, quality: str = "good", latest: bool = True) -> None:
        """Samples of one series as (ts, value): numbers into value, str into value_text, else JSON.

        The newest becomes the series' ``latest`` row unless ``latest`` is false.
        """
        stored: list[list[object]] = [[series_id, ts, *_columns(value), quality, ts] for ts, value in rows]
        self._connection.executemany(
            "INSERT INTO samples (series_id, ts, value, value_text, value_json, quality, historical, source, received)"
            " VALUES (?, ?, ?, ?, ?, ?, false, 'g/n/d', ?)",
            stored,
        )
        if latest and stored:
            newest = max(stored, key=lambda row: _when(row[1]))
            self._connection.execute(
                "INSERT OR REPLACE INTO latest (series_id, ts, value, value_text, value_json, quality, historical,"
                " source, received) VALUES (?, ?, ?, ?, ?, ?, false, 'g/n/d', ?)",
                newest,
            )

    def big_int(self, series_id: int, ts: datetime, digits: int) -> None:
        """An integer beyond 2^53: the DOUBLE rounds, value_text keeps the digits."""
        self._connection.execute(
            "INSERT INTO samples (series_id, ts, value, value_text, quality, historical, received)"
            " VALUES (?, ?, ?, ?, 'good', false, ?)",
            [series_id, ts, float(digits), str(digits), ts],
        )

    def mes_event(self, topic: str, ts: datetime, body: dict[str, object]) -> None:
        """One MES event row."""
        levels = topic.split("/")
        at = levels.index("mes")
        self._connection.execute(
            "INSERT INTO mes_events (event_key, topic, path, event, ts, body, received) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [hash((topic, ts)) & 0xFFFF_FFFF, topic, "/".join(levels[:at]), levels[at + 1], ts,
             orjson.dumps(body).decode(), ts],
        )  # fmt: skip

    def dead_letter(self, received: datetime, topic: str, field: str, reason: str, payload: bytes) -> None:
        """One dead letter row."""
        self._connection.execute(
            "INSERT INTO dead_letters (received, topic, field, reason, payload) VALUES (?, ?, ?, ?, ?)",
            [received, topic, field, reason, payload],
        )


def _columns(value: object) -> tuple[float | None, str | None, str | None]:
    if value is None:
        return None, None, None
    if isinstance(value, bool | int | float):
        return float(value), None, None
    if isinstance(value, str):
        return None, value, None
    return None, None, orjson.dumps(value).decode()


def _when(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value
