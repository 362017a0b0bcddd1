from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.uns.historian.fill import T0, add_samples, add_series
from uns.historian.rollups import Rollups, floor_time, read_watermarks
from uns.store.database import Database

S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)
TOPIC = "acme/dallas/packaging/line1/filler/data/Temperature"


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with Database(path=tmp_path / "historian.duckdb") as database:
        add_series(database.connection, 1, TOPIC)
        add_series(database.connection, 2, TOPIC.replace("Temperature", "Pressure"))
        yield database.connection


def _rollup(conn: duckdb.DuckDBPyConnection, table: str, series_id: int = 1) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT bucket, n, avg, min, max, first, last, first_ts, last_ts FROM " + table + " WHERE series_id = ?"  # noqa: S608
        " ORDER BY bucket",
        [series_id],
    ).fetchall()


def _minute_zero(conn: duckdb.DuckDBPyConnection) -> None:
    """Three counted samples in minute 0, plus ones a rollup must skip; nothing in minute 1; one in minute 2."""
    add_samples(
        conn,
        1,
        [
            (T0 + 10 * S, 1.0, "good"),
            (T0 + 20 * S, 2.0, "uncertain"),
            (T0 + 40 * S, 100.0, "bad"),
            (T0 + 45 * S, 100.0, "stale"),
            (T0 + 50 * S, 6.0, "good"),
            (T0 + 2 * M + 5 * S, 10.0, "good"),
        ],
    )
    add_samples(conn, 1, [(T0 + 30 * S, None, "good")], value_text="text")


def test_hand_computed_minutes(conn: duckdb.DuckDBPyConnection) -> None:
    _minute_zero(conn)
    report = Rollups(settle=timedelta(0)).run(conn, now=T0 + 3 * M + 1 * S)
    assert report.rows_1m == 2
    assert report.range_1m == (T0, T0 + 3 * M)
    assert report.range_1h is None  # the hour is still open
    assert _rollup(conn, "rollup_1m") == [
        (T0, 3, 3.0, 1.0, 6.0, 1.0, 6.0, T0 + 10 * S, T0 + 50 * S),
        (T0 + 2 * M, 1, 10.0, 10.0, 10.0, 10.0, 10.0, T0 + 2 * M + 5 * S, T0 + 2 * M + 5 * S),
    ]
    assert read_watermarks(conn)["rollup_1m"] == T0 + 3 * M


def test_open_minute_waits_for_settle(conn: duckdb.DuckDBPyConnection) -> None:
    _minute_zero(conn)
    rollups = Rollups(settle=timedelta(seconds=10))
    report = rollups.run(conn, now=T0 + 3 * M + 5 * S)  # minute 2 closed 5 s ago: not settled
    assert report.range_1m == (T0, T0 + 2 * M)
    assert [row[0] for row in _rollup(conn, "rollup_1m")] == [T0]
    report = rollups.run(conn, now=T0 + 3 * M + 10 * S)
    assert report.range_1m == (T0 + 2 * M, T0 + 3 * M)
    assert [row[0] for row in _rollup(conn, "rollup_1m")] == [T0, T0 + 2 * M]


def test_second_run_without_news_does_nothing(conn: duckdb.DuckDBPyConnection) -> None:
    _minute_zero(conn)
    rollups = Rollups(settle=timedelta(0))
    rollups.run(conn, now=T0 + 3 * M)
    before = _rollup(conn, "rollup_1m")
    report = rollups.run(conn, now=T0 + 3 * M + 30 * S)
    assert (report.did_work, report.rows_1m, report.rows_1h) == (False, 0, 0)
    assert _rollup(conn, "rollup_1m") == before


def test_empty_database_sets_no_watermark(conn: duckdb.DuckDBPyConnection) -> None:
    report = Rollups().run(conn, now=T0)
    assert not report.did_work
    assert read_watermarks(conn) == {}


def test_late_sample_recomputes_closed_bucket_after_mark_late(conn: duckdb.DuckDBPyConnection) -> None:
    _minute_zero(conn)
    rollups = Rollups(settle=timedelta(0))
    rollups.run(conn, now=T0 + 65 * M)
    assert _rollup(conn, "rollup_1h") == [(T0, 4, 4.75, 1.0, 10.0, 1.0, 10.0, T0 + 10 * S, T0 + 2 * M + 5 * S)]
    # backfill, stamped as received before the last run so only mark_late can reveal it
    add_samples(conn, 1, [(T0 + 30 * S, 9.0, "good")], received=T0)
    rollups.mark_late(T0 + 30 * S)
    assert rollups.pending_late == T0
    report = rollups.run(conn, now=T0 + 66 * M)
    assert report.range_1m == (T0, T0 + 66 * M)
    assert report.range_1h == (T0, T0 + H)
    assert [rollups.pending_late] == [None]  # consumed (a list keeps mypy from narrowing the property)
    assert _rollup(conn, "rollup_1m")[0] == (T0, 4, 4.5, 1.0, 9.0, 1.0, 6.0, T0 + 10 * S, T0 + 50 * S)
    assert _rollup(conn, "rollup_1h") == [(T0, 5, 5.6, 1.0, 10.0, 1.0, 10.0, T0 + 10 * S, T0 + 2 * M + 5 * S)]


def test_late_sample_found_by_received_without_mark_late(conn: duckdb.DuckDBPyConnection) -> None:
    _minute_zero(conn)
    rollups = Rollups(settle=timedelta(0))
    rollups.run(conn, now=T0 + 10 * M)
    add_samples(conn, 1, [(T0 + 2 * M + 1 * S, 4.0, "good")], received=T0 + 10 * M)  # e.g. stored, then restarted
    report = Rollups(settle=timedelta(0)).run(conn, now=T0 + 11 * M)
    assert report.range_1m == (T0 + 2 * M, T0 + 11 * M)
    assert _rollup(conn, "rollup_1m")[1][:3] == (T0 + 2 * M, 2, 7.0)


def test_mark_late_after_watermark_changes_nothing(conn: duckdb.DuckDBPyConnection) -> None:
    _minute_zero(conn)
    rollups = Rollups(settle=timedelta(0))
    rollups.run(conn, now=T0 + 3 * M)
    rollups.mark_late(T0 + 5 * M)
    assert rollups.run(conn, now=T0 + 4 * M).range_1m == (T0 + 3 * M, T0 + 4 * M)


def test_first_run_starts_from_the_oldest_sample(conn: duckdb.DuckDBPyConnection) -> None:
    old = T0 - timedelta(days=3) + 17 * M + 3 * S
    add_samples(conn, 2, [(old, 1.0, "good"), (old + H, 3.0, "good")])
    report = Rollups(settle=timedelta(0)).run(conn, now=T0)
    assert report.range_1m == (floor_time(old, M), T0)
    assert report.range_1h == (floor_time(old, H), T0)
    assert conn.execute("SELECT bucket, n, avg FROM rollup_1h ORDER BY bucket").fetchall() == [
        (floor_time(old, H), 1, 1.0),
        (floor_time(old, H) + H, 1, 3.0),
    ]


def test_hours_are_built_from_minutes_like_raw(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        "INSERT INTO samples SELECT 1 + i % 2, ?::TIMESTAMPTZ + i * INTERVAL 7 second, sin(i / 50.0) * 100 + i % 7,"
        " NULL, NULL, 'good', false, NULL, ?::TIMESTAMPTZ, 0 FROM range(3000) t(i)",
        [T0, T0],
    )
    Rollups(settle=timedelta(0)).run(conn, now=T0 + 6 * H)
    got = conn.execute(
        "SELECT series_id, bucket, n, avg, min, max, first, last FROM rollup_1h ORDER BY 1, 2"
    ).fetchall()
    want = conn.execute(
        "SELECT series_id, time_bucket(INTERVAL 1 hour, ts) AS b, count(*), avg(value), min(value), max(value),"
        " arg_min(value, ts), arg_max(value, ts) FROM samples GROUP BY ALL ORDER BY 1, 2"
    ).fetchall()
    assert len(got) == len(want) == 12
    for row, expected in zip(got, want, strict=True):
        assert row[:3] == expected[:3]
        assert row[3] == pytest.approx(expected[3], rel=1e-12)
        assert row[4:] == expected[4:]


def test_naive_now_is_refused(conn: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="naive"):
        Rollups().run(conn, now=datetime(2025, 1, 1))


def test_failed_run_keeps_the_late_mark(conn: duckdb.DuckDBPyConnection) -> None:
    _minute_zero(conn)
    rollups = Rollups(settle=timedelta(0))
    rollups.run(conn, now=T0 + 3 * M)
    rollups.mark_late(T0)
    conn.execute("ALTER TABLE rollup_1h RENAME TO rollup_1h_away")  # a real failure mid-transaction
    with pytest.raises(duckdb.Error):
        rollups.run(conn, now=T0 + 2 * H)
    assert rollups.pending_late == T0
    assert read_watermarks(conn)["rollup_1m"] == T0 + 3 * M  # rolled back


def test_million_rows(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        "INSERT INTO samples SELECT 1 + i % 100, ?::TIMESTAMPTZ + (i // 100) * INTERVAL 1 second, (i % 1000) / 10.0,"
        " NULL, NULL, CASE WHEN i % 97 = 0 THEN 'bad' ELSE 'good' END, false, NULL, ?::TIMESTAMPTZ,"
        " 0 FROM range(1000000) t(i)",
        [T0, T0],
    )
    started = time.perf_counter()
    report = Rollups(settle=timedelta(0)).run(conn, now=T0 + 4 * H)
    elapsed = time.perf_counter() - started
    print(f"rollup of 1M samples: {report.rows_1m} minute and {report.rows_1h} hour buckets in {elapsed:.2f} s")
    counted = conn.execute("SELECT count(*) FROM samples WHERE quality = 'good'").fetchone()
    assert counted is not None
    assert conn.execute("SELECT sum(n) FROM rollup_1m").fetchone() == (counted[0],)
    assert conn.execute("SELECT sum(n) FROM rollup_1h").fetchone() == (counted[0],)
    assert report.rows_1m == 100 * 167  # 10 000 s per series = 166 minutes and 40 s
    assert report.rows_1h == 100 * 3


def test_floor_time_is_utc_aligned() -> None:
    from zoneinfo import ZoneInfo

    kolkata = datetime(2025, 1, 1, 12, 40, 10, tzinfo=ZoneInfo("Asia/Kolkata"))  # UTC+05:30
    assert floor_time(kolkata, H) == datetime(2025, 1, 1, 7, 0, tzinfo=UTC)
    assert floor_time(kolkata, M) == datetime(2025, 1, 1, 7, 10, tzinfo=UTC)
