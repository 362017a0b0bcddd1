from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from model.config import HistorianSection
from tests.uns.historian.fill import T0, add_samples, add_series
from uns.historian.retention import apply_retention
from uns.historian.rollups import Rollups, read_watermarks
from uns.store.database import Database

D = timedelta(days=1)
H = timedelta(hours=1)
M = timedelta(minutes=1)
SECTION = HistorianSection(raw_retention_days=10, rollup_1m_retention_days=20, rollup_1h_retention_days=30)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with Database(path=tmp_path / "historian.duckdb") as database:
        add_series(database.connection, 1, "acme/dallas/packaging/line1/filler/data/Temperature")
        # one good sample every 30 minutes for 40 days
        database.connection.execute(
            "INSERT INTO samples SELECT 1, ?::TIMESTAMPTZ + i * INTERVAL 30 minute, i, NULL, NULL, 'good', false,"
            " NULL, ?::TIMESTAMPTZ + i * INTERVAL 30 minute, 0 FROM range(40 * 48) t(i)",
            [T0, T0],
        )
        yield database.connection


def _count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    row = conn.execute("SELECT count(*) FROM " + table).fetchone()  # noqa: S608
    assert row is not None
    return int(row[0])


def _dead_letter(conn: duckdb.DuckDBPyConnection, days: int) -> None:
    conn.execute("INSERT INTO dead_letters VALUES (?, 'acme/x', 'payload', 'not JSON', 'x'::BLOB)", [T0 + days * D])


def test_nothing_rolled_up_means_no_raw_deleted(conn: duckdb.DuckDBPyConnection) -> None:
    report = apply_retention(conn, SECTION, now=T0 + 40 * D)
    assert (report.samples, report.rollup_1m, report.rollup_1h) == (0, 0, 0)
    assert _count(conn, "samples") == 40 * 48


def test_raw_kept_back_to_the_rollup_watermark(conn: duckdb.DuckDBPyConnection) -> None:
    Rollups(settle=timedelta(0)).run(conn, now=T0 + 5 * D)  # rolled up only the first 5 days
    report = apply_retention(conn, SECTION, now=T0 + 40 * D)  # raw retention alone would cut at day 30
    assert report.cutoffs["samples"] == T0 + 5 * D
    assert report.samples == 5 * 48
    assert _count(conn, "samples") == 35 * 48
    oldest = conn.execute("SELECT min(ts) FROM samples").fetchone()
    assert oldest == (T0 + 5 * D,)


def test_each_table_to_its_retention(conn: duckdb.DuckDBPyConnection) -> None:
    for days in (1, 29, 31):
        _dead_letter(conn, days)
    Rollups(settle=timedelta(0)).run(conn, now=T0 + 40 * D)
    minutes, hours = _count(conn, "rollup_1m"), _count(conn, "rollup_1h")
    report = apply_retention(conn, SECTION, now=T0 + 40 * D + 30 * M)
    assert report.cutoffs == {
        "samples": T0 + 30 * D,
        "rollup_1m": T0 + 20 * D,
        "rollup_1h": T0 + 10 * D,
        "dead_letters": T0 + 30 * D + 30 * M,
    }
    assert (report.samples, report.rollup_1m, report.rollup_1h, report.dead_letters) == (30 * 48, 20 * 48, 10 * 24, 2)
    assert report.total == 30 * 48 + 20 * 48 + 10 * 24 + 2
    assert _count(conn, "samples") == 10 * 48
    assert _count(conn, "rollup_1m") == minutes - 20 * 48
    assert _count(conn, "rollup_1h") == hours - 10 * 24
    assert _count(conn, "dead_letters") == 1
    marks = read_watermarks(conn)
    assert marks["retention.samples"] == T0 + 30 * D
    assert apply_retention(conn, SECTION, now=T0 + 40 * D + 30 * M).total == 0  # nothing left to delete


def test_zero_days_keeps_forever(conn: duckdb.DuckDBPyConnection) -> None:
    _dead_letter(conn, 0)
    Rollups(settle=timedelta(0)).run(conn, now=T0 + 40 * D)
    forever = HistorianSection(raw_retention_days=0, rollup_1m_retention_days=0, rollup_1h_retention_days=0)
    report = apply_retention(conn, forever, now=T0 + 400 * D)
    assert report.total == 0
    assert report.cutoffs == {}
    assert _count(conn, "samples") == 40 * 48


def test_minutes_kept_until_hours_are_built(conn: duckdb.DuckDBPyConnection) -> None:
    Rollups(settle=timedelta(0)).run(conn, now=T0 + 40 * D)
    conn.execute("UPDATE maintenance SET watermark = ? WHERE task = 'rollup_1h'", [T0 + 2 * D])
    report = apply_retention(conn, SECTION, now=T0 + 40 * D)
    assert report.cutoffs["rollup_1m"] == T0 + 2 * D
    assert report.rollup_1m == 2 * 48


def test_late_sample_before_purge_keeps_old_rollups(conn: duckdb.DuckDBPyConnection) -> None:
    rollups = Rollups(settle=timedelta(0))
    rollups.run(conn, now=T0 + 40 * D)
    apply_retention(conn, SECTION, now=T0 + 40 * D)
    before = conn.execute("SELECT * FROM rollup_1m WHERE bucket < ? ORDER BY bucket", [T0 + 30 * D]).fetchall()
    # a backfill older than raw retention: its minute's other samples are gone, so it must not rebuild it
    add_samples(conn, 1, [(T0 + 25 * D + 5 * M, 1000.0, "good")], received=T0 + 40 * D)
    rollups.mark_late(T0 + 25 * D)
    report = rollups.run(conn, now=T0 + 40 * D + 2 * M)
    assert report.range_1m is not None
    assert report.range_1m[0] == T0 + 30 * D
    after = conn.execute("SELECT * FROM rollup_1m WHERE bucket < ? ORDER BY bucket", [T0 + 30 * D]).fetchall()
    assert after == before


@pytest.mark.parametrize(
    "module", ["uns.historian.rollups", "uns.historian.retention", "uns.historian.compression", "uns.historian.export"]
)
def test_all_names_exist(module: str) -> None:
    loaded = importlib.import_module(module)
    assert loaded.__doc__
    for name in loaded.__all__:
        assert hasattr(loaded, name), name
