"""Every shape of the bucket SQL gives the buckets the raw samples define, and both answer paths write them alike.

The shapes: raw samples aggregated in one pass with first/last by ``(ts, seq)`` or, where no two
samples share a millisecond, by ``ts`` alone; and the merge of row sources rollups use (here
two raw parts). Each is checked against buckets computed in Python from the stored rows.
"""

from __future__ import annotations

import bisect
import logging
import math
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from tests.uns.historian.history_data import LINE, Filler, open_database
from uns.historian.queries import History
from uns.historian.query_api import answer_bytes, run_endpoint
from uns.historian.query_buckets import bucket_sql, untied
from uns.query.args import document_bytes
from uns.store.database import Database

T0 = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)  # Berlin's clocks go back 5 h later
NOW = T0 + timedelta(days=4)
TIED = f"{LINE}/filler/data/Tied"  # bursts of values in one millisecond (seq 0, 1, 2), some arrived out of order
PLAIN = f"{LINE}/filler/data/Plain"  # one value per millisecond: first and last by time alone
COUNT = f"{LINE}/filler/data/Count"  # Int32, one value per millisecond
RUNNING = f"{LINE}/filler/data/Running"  # Boolean, one value per millisecond
STEP = timedelta(seconds=7, milliseconds=130)

_Row = tuple[datetime, int, float | None]


def _rows(count: int, *, bursts: bool) -> list[_Row]:
    """(ts, seq, value) rows over three days with gaps, nulls, and in ``bursts`` three values per 11th time."""
    rows: list[_Row] = []
    for i in range(count):
        if i % 500 < 90:  # a gap of ~10 minutes every hour
            continue
        ts = T0 + i * STEP
        value = None if i % 17 == 0 else math.sin(i / 50) * 40 + (i % 7) / 3
        rows.append((ts, 0, value))
        if bursts and i % 11 == 0:
            rows += [(ts, 2, float(i % 13)), (ts, 1, -float(i % 5))]  # seq 2 stored before seq 1
    return rows


def _insert(db: Database, series_id: int, rows: list[_Row]) -> None:
    ts, seq, value = (list(column) for column in zip(*rows, strict=True))
    batch = pa.table({"ts": ts, "seq": pa.array(seq, pa.uint32()), "value": pa.array(value, pa.float64())})
    db.connection.register("_batch", batch)
    try:
        db.connection.execute(
            "INSERT INTO samples (series_id, ts, value, quality, historical, received, seq)"
            " SELECT ?, ts, value, 'good', false, ts, seq FROM _batch",
            [series_id],
        )
    finally:
        db.connection.unregister("_batch")


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = open_database(tmp_path_factory.mktemp("shapes") / "historian.duckdb")
    fill = Filler(database.connection)
    _insert(database, fill.series(TIED, "Double", first_seen=T0), _rows(36_000, bursts=True))
    _insert(database, fill.series(PLAIN, "Double", first_seen=T0), _rows(36_000, bursts=False))
    whole = [(ts, seq, None if v is None else float(round(v * 100))) for ts, seq, v in _rows(36_000, bursts=False)]
    _insert(database, fill.series(COUNT, "Int32", first_seen=T0), whole)
    flags = [(ts, seq, None if v is None else float(v > 0)) for ts, seq, v in _rows(36_000, bursts=False)]
    _insert(database, fill.series(RUNNING, "Boolean", first_seen=T0), flags)
    yield database
    database.close()


def _expected(
    rows: list[_Row], starts: list[datetime], width: timedelta, start: datetime, end: datetime
) -> list[tuple[object, ...]]:
    """(n, min, max, first, last) per bucket from the rows in ``[start, end)``; first/last by (ts, seq)."""
    ordered = sorted((ts, seq, v) for ts, seq, v in rows if v is not None and start <= ts < end)
    times = [ts for ts, _, _ in ordered]
    found: list[tuple[object, ...]] = []
    for low in starts:
        values = [v for _, _, v in ordered[bisect.bisect_left(times, low) : bisect.bisect_left(times, low + width)]]
        found.append((len(values), min(values), max(values), values[0], values[-1]) if values else (None,) * 5)
    return found


def _run(db: Database, sql: str, params: dict[str, object]) -> list[tuple[object, ...]]:
    cursor = db.reader()
    try:
        rows = cursor.execute(sql, params).fetchall()
    finally:
        cursor.close()
    return [tuple(row) for row in rows]


@pytest.mark.parametrize(
    ("zone", "width"),
    [("UTC", timedelta(minutes=1)), ("Asia/Kathmandu", timedelta(minutes=45)), ("Europe/Berlin", timedelta(hours=1))],
)
def test_every_shape_gives_the_buckets_of_the_raw_samples(stored: Database, zone: str, width: timedelta) -> None:
    tz = ZoneInfo(zone)
    start, end = T0 + timedelta(hours=3, minutes=3, seconds=17), T0 + timedelta(days=2, hours=7)  # Berlin: DST ends
    middle = T0 + timedelta(days=1, hours=3, seconds=29)  # not on a bucket edge: one bucket gets rows of both parts
    for topic, series_id, bursts in [(TIED, 1, True), (PLAIN, 2, False)]:
        plans = {
            "raw": [("samples", start, end)],
            "two sources": [("samples", middle, end), ("samples", start, middle)],
        }
        results = {
            name: _run(stored, *bucket_sql(series_id, plan, start, end, width, tz)) for name, plan in plans.items()
        }
        by_time = _run(stored, *bucket_sql(series_id, plans["raw"], start, end, width, tz, untied=True))
        starts = [datetime.fromtimestamp(typing.cast(int, row[0]) / 1000, UTC) for row in results["raw"]]
        expected = _expected(_rows(36_000, bursts=bursts), starts, width, start, end)
        assert len(expected) > 30
        if bursts:  # ordered by time alone, some bucket's first or last is another value of its millisecond
            assert [(row[2], *row[4:]) for row in by_time] != expected
        else:
            results["by time"] = by_time
        for name, rows in results.items():
            assert [(row[2], *row[4:]) for row in rows] == expected, (topic, name)
            assert [row[:2] for row in rows] == [row[:2] for row in results["raw"]], (topic, name)
            for row, (n, *_) in zip(rows, expected, strict=True):
                assert (row[3] is None) == (n is None), (topic, name)


def test_ties_are_looked_for_in_the_window_only(stored: Database) -> None:
    cursor = stored.reader()
    try:
        assert untied(cursor, 2, T0, NOW)
        assert not untied(cursor, 1, T0, NOW)
        burst = T0 + 11 * STEP * 100  # a time with seq 1 and 2 rows (i = 1100)
        assert not untied(cursor, 1, burst, burst + timedelta(milliseconds=1))
        assert untied(cursor, 1, burst + timedelta(milliseconds=1), burst + 2 * STEP)  # the next time: one value
    finally:
        cursor.close()


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Asia/Kathmandu"])
@pytest.mark.parametrize("fill_mode", ["none", "null", "previous"])
@pytest.mark.parametrize("topic", [TIED, PLAIN, COUNT, RUNNING])
def test_columnar_and_row_answers_agree_on_both_orders(
    stored: Database, zone: str, fill_mode: str, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Over 5,000 one-minute buckets (a perfect hash table past DuckDB's default 4,096) with gaps."""
    caplog.set_level(logging.DEBUG, logger="uns.historian.query_api")
    history = History(stored, clock=lambda: NOW)
    params = {
        "topic": [topic], "start": [(T0 + timedelta(minutes=3, seconds=20)).isoformat()],
        "end": [(T0 + timedelta(days=3, hours=13)).isoformat()], "bucket": ["1m"], "tz": [zone], "fill": [fill_mode],
    }  # fmt: skip
    old = document_bytes(run_endpoint(history, "aggregate", params))
    assert answer_bytes(history, "aggregate", params) == old
    assert "row by row" not in caplog.text
    assert old.count(b'"filled":') > (3_000 if fill_mode == "none" else 5_000)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kathmandu"])
@pytest.mark.parametrize("topic", [TIED, PLAIN, COUNT, RUNNING])
def test_columnar_and_row_answers_agree_where_every_bucket_holds_samples(
    stored: Database, zone: str, topic: str
) -> None:
    """Hours of the data (each has samples): the buckets come from DuckDB in order and are taken as they are."""
    history = History(stored, clock=lambda: NOW)
    params = {
        "topic": [topic], "start": [(T0 + timedelta(minutes=25)).isoformat()],
        "end": [(T0 + timedelta(days=2, hours=20)).isoformat()], "bucket": ["15m"], "tz": [zone],
    }  # fmt: skip
    old = document_bytes(run_endpoint(history, "aggregate", params))
    assert answer_bytes(history, "aggregate", params) == old
    assert old.count(b'"filled":false') > 200
    assert b'"filled":true' not in old


def test_a_window_without_samples_is_empty_buckets_on_both_paths(stored: Database) -> None:
    history = History(stored, clock=lambda: NOW)
    params = {
        "topic": [PLAIN], "start": [(T0 - timedelta(hours=3)).isoformat()],
        "end": [(T0 - timedelta(hours=1)).isoformat()], "bucket": ["1m"], "fill": ["null"],
    }  # fmt: skip
    old = document_bytes(run_endpoint(history, "aggregate", params))
    assert answer_bytes(history, "aggregate", params) == old
    assert old.count(b'"count":0,"filled":true}') == 120


@pytest.fixture
def retained(db: Database, fill: Filler) -> History:
    """Day 1: 1-hour rollups only; day 2: 1-minute rollups only; day 3: raw samples (retention took the rest)."""
    series_id = fill.series(PLAIN, "Double", first_seen=T0)
    for table, first, rows, size in [("rollup_1h", T0, 24, 3600), ("rollup_1m", T0 + timedelta(days=1), 1440, 60)]:
        db.connection.execute(
            f"INSERT INTO {table} SELECT $sid, $t0 + to_seconds(i * $size), 3, 10.0 + i / 7, i / 7, 20.0 + i / 7,"  # noqa: S608
            " 1.5 + i, 2.5 - i, $t0 + to_seconds(i * $size + 1), $t0 + to_seconds(i * $size + $size - 1)"
            " FROM range($rows) AS r(i)",
            {"sid": series_id, "t0": first, "size": size, "rows": rows},
        )
    _insert(db, series_id, [(T0 + timedelta(days=2, seconds=37 * i), 0, float(i % 23) / 3) for i in range(2300)])
    return History(db, clock=lambda: NOW)


@pytest.mark.parametrize(
    ("start", "bucket", "zone"),
    [
        (T0, "1d", "UTC"),  # whole days: rollup_1h, rollup_1m and raw each answer one day
        (T0 + timedelta(hours=5, minutes=17), "1h", "UTC"),  # a start off the rollups' boundaries
        (T0 + timedelta(hours=20), "30m", "Asia/Kolkata"),  # 1-minute rollups and raw only (+05:30)
        (T0 + timedelta(days=1, hours=23), "1m", "UTC"),  # the last rolled-up minutes, then raw
    ],
)
@pytest.mark.parametrize("fill_mode", ["none", "null", "previous"])
def test_columnar_and_row_answers_agree_where_rollups_answer(
    retained: History, start: datetime, bucket: str, zone: str, fill_mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="uns.historian.queries")
    params = {
        "topic": [PLAIN], "start": [start.isoformat()], "end": [(T0 + timedelta(days=2, hours=9)).isoformat()],
        "bucket": [bucket], "tz": [zone], "fill": [fill_mode],
    }  # fmt: skip
    old = document_bytes(run_endpoint(retained, "aggregate", params))
    assert answer_bytes(retained, "aggregate", params) == old
    assert "from samples [" in caplog.text
    assert "rollup_1m [" in caplog.text  # the row path's plan: rollups answered part of the window
    assert b'"filled":false' in old
