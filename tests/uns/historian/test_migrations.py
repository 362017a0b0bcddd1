"""Schema versions: an upgrade migrates in place, keeps every row and a backup; a newer file is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest

from uns.errors import HistorianError, SchemaTooNew
from uns.historian.database import Database, schema_version
from uns.historian.rows import RowParser, SampleRow
from uns.historian.schema import LATEST_VERSION, MIGRATIONS
from uns.historian.store import Batch, Store


def test_versions_are_consecutive_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert LATEST_VERSION == MIGRATIONS[-1].version >= 2


def test_new_database_is_at_the_latest_version(tmp_path: Path) -> None:
    with Database(path=tmp_path / "h.duckdb") as db:
        assert schema_version(db.connection) == LATEST_VERSION
        versions = db.connection.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert [v for (v,) in versions] == list(range(1, LATEST_VERSION + 1))


def test_upgrade_from_version_1_keeps_every_row_and_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    with Database(path=path, target_version=1) as old:
        old.connection.execute(
            "INSERT INTO series VALUES (1, 'a/data/x', 'a', 'data', 'x', 'Double', NULL, false, now())"
        )
        old.connection.execute(
            "INSERT INTO samples SELECT 1, to_timestamp(i), i, NULL, NULL, 'good', false, NULL, now()"
            " FROM range(1000) t(i)"
        )
        assert schema_version(old.connection) == 1
    with Database(path=path) as new:
        assert schema_version(new.connection) == LATEST_VERSION
        assert new.connection.execute("SELECT count(*), sum(value) FROM samples").fetchone() == (1000, 499500.0)
        assert new.connection.execute("SELECT count(*) FROM rollup_1m").fetchone() == (0,)  # the v2 table exists
    backup = tmp_path / "h.duckdb.v1.bak"
    assert backup.exists()
    with duckdb.connect(str(backup), read_only=True) as copy:
        assert copy.execute("SELECT max(version), (SELECT count(*) FROM samples) FROM schema_version").fetchone() == (
            1,
            1000,
        )


def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    with Database(path=path) as db:
        db.connection.execute("INSERT INTO schema_version (version, description) VALUES (99, 'from the future')")
    with pytest.raises(
        SchemaTooNew, match=rf"schema version 99 is newer than this uns-hub knows \({LATEST_VERSION}\): upgrade"
    ):
        Database(path=path).open()


def test_read_only_open_of_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(HistorianError, match="start the historian"):
        Database(path=tmp_path / "none.duckdb", read_only=True).open()


def test_a_second_writer_is_told_to_use_http(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    script = (
        "import sys; from uns.historian.database import Database\n"
        "from uns.errors import HistorianError\n"
        f"try:\n    Database(path={str(path)!r}).open()\nexcept HistorianError as e:\n    print(e); sys.exit(3)\n"
    )
    with Database(path=path):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 3, result.stderr
    assert "uns query --api" in result.stdout


def test_upgrade_to_arrival_order_keeps_every_row_of_a_version_3_file(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    with Database(path=path, target_version=3) as old:
        old.connection.execute(
            "INSERT INTO series VALUES (1, 'a/b/data/x', 'a/b', 'data', 'x', 'Double', NULL, false, now())"
        )
        old.connection.execute(
            "INSERT INTO samples SELECT 1, make_timestamp(i * 1000), i, NULL, NULL, 'good', false, NULL, now()"
            " FROM range(5000) t(i)"
        )
        old.connection.execute(
            "INSERT INTO latest VALUES (1, make_timestamp(4999 * 1000), 4999, NULL, NULL, 'good', false, NULL, now())"
        )
    with Database(path=path) as new:
        assert new.connection.execute(
            "SELECT count(*), sum(value), count(*) FILTER (WHERE seq = 0) FROM samples"
        ).fetchone() == (5000, 12497500.0, 5000)
        assert new.connection.execute("SELECT value, seq FROM latest").fetchall() == [(4999.0, 0)]
        # the old newest millisecond takes a re-delivery once and a new value after its stored one
        row = {"value": 4999.0, "timestamp_ms": 4999, "datatype": "Double"}
        parse = RowParser(max_future_ms=0).parse
        again = parse("a/b/data/x", orjson.dumps(row), now_ms=5000)
        other = parse("a/b/data/x", orjson.dumps({**row, "value": 1.5}), now_ms=5000)
        assert isinstance(again, SampleRow)
        assert isinstance(other, SampleRow)
        report = Store(new.connection).commit(Batch(samples=[again, other], received_ms=[5000, 5000]))
        assert (report.inserted, report.duplicates) == (1, 1)
        assert new.connection.execute(
            "SELECT seq, value FROM samples WHERE ts = make_timestamp(4999 * 1000)"
        ).fetchall() == [
            (0, 4999.0),
            (1, 1.5),
        ]
        assert new.connection.execute("SELECT value, seq FROM latest").fetchall() == [(1.5, 1)]
    assert (tmp_path / "h.duckdb.v3.bak").exists()
