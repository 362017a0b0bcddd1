"""Schema versions: an upgrade migrates in place, keeps every row and a backup; a newer file is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from uns.errors import HistorianError, SchemaTooNew
from uns.historian.database import Database, schema_version
from uns.historian.schema import LATEST_VERSION, MIGRATIONS


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
