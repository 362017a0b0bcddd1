"""Schema versions per component: an upgrade migrates in place, keeps every row and a backup; a newer file is refused.

``legacy/legacy_v<N>.duckdb.gz`` are files made by the code before per-component versions (commit 929239d,
``uns.historian.database.Database(path=..., target_version=N)``, with one series, one sample and, from
version 3, one ``mes_states`` row): each opens and migrates to the same tables as a fresh file.
``legacy/mes_v5_dd81cfe.duckdb.gz`` was made by commit dd81cfe's code (MES version 5 before 4148cb9 edited it:
its ``mes_maintenance`` had no ``closes_left_out``), with two maintenance orders at the filler.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest

from tests.uns.mes.mes_events import at
from uns.errors import SchemaTooNew, StoreError
from uns.historian.rows import RowParser, SampleRow
from uns.historian.schema import SCHEMA as HISTORIAN
from uns.historian.store import Batch, Store
from uns.mes.maintenance_views import maintenance_orders
from uns.mes.schema import SCHEMA as MES
from uns.rules.schema import SCHEMA as ALARMS
from uns.store.database import Database
from uns.store.migrations import (
    LAYOUT_VERSION,
    LEGACY_LAST,
    Component,
    Migration,
    component_versions,
    installed,
    schema_version,
)

_LEGACY = Path(__file__).parent / "legacy"
_LATEST = {"historian": 3, "mes": 6, "alarms": 1}


def _legacy_file(version: int, tmp_path: Path) -> Path:
    return _unzipped(f"legacy_v{version}.duckdb.gz", tmp_path)


def _unzipped(name: str, tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "h.duckdb"
    with gzip.open(_LEGACY / name, "rb") as source, path.open("wb") as target:
        shutil.copyfileobj(source, target)
    return path


def _shape(connection: duckdb.DuckDBPyConnection) -> dict[str, object]:
    """Every table's columns and types, the views' SQL, the indexes and the enum types: what the schema is."""
    columns = connection.execute(
        "SELECT table_name, list(column_name || ' ' || data_type || ' ' || is_nullable || ' '"
        " || coalesce(column_default, '') ORDER BY ordinal_position)"
        " FROM information_schema.columns WHERE table_name NOT IN ('schema_version', 'component_versions')"
        " GROUP BY table_name ORDER BY table_name"
    ).fetchall()
    views = connection.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()
    indexes = connection.execute("SELECT index_name, table_name, sql FROM duckdb_indexes() ORDER BY 1").fetchall()
    constraints = connection.execute(
        "SELECT table_name, constraint_type, constraint_column_names FROM duckdb_constraints()"
        " WHERE table_name NOT IN ('schema_version', 'component_versions') ORDER BY ALL"
    ).fetchall()
    types = connection.execute("SELECT type_name, labels FROM duckdb_types() WHERE NOT internal ORDER BY 1").fetchall()
    return {"columns": columns, "views": views, "indexes": indexes, "constraints": constraints, "types": types}


def test_the_installed_components_and_their_versions() -> None:
    assert [c.name for c in installed()] == ["historian", "mes", "alarms"]
    assert installed() == (HISTORIAN, MES, ALARMS)
    assert {c.name: c.latest for c in installed()} == _LATEST
    # each step of the old single sequence is the step of exactly one component, in the old order
    legacy = sorted(m.legacy for c in installed() for m in c.migrations if m.legacy is not None)
    assert legacy == list(range(1, LEGACY_LAST + 1))


@pytest.mark.parametrize(
    ("versions", "legacy", "error"),
    [
        ((1, 3), (None, None), "versions must be 1, 2, 3"),
        ((1, 2), (None, 4), "legacy steps must come first"),
        ((1, 2), (5, 4), "legacy steps must come first"),
    ],
)
def test_a_component_s_versions_are_checked(
    versions: tuple[int, int], legacy: tuple[int | None, int | None], error: str
) -> None:
    steps = tuple(
        Migration(version=v, description="x", statements=(), legacy=o) for v, o in zip(versions, legacy, strict=True)
    )
    with pytest.raises(ValueError, match=error):
        Component(name="x", migrations=steps)


def test_a_new_file_has_every_component_at_its_latest_version(tmp_path: Path) -> None:
    with Database(path=tmp_path / "h.duckdb") as db:
        assert schema_version(db.connection) == LAYOUT_VERSION
        assert component_versions(db.connection) == _LATEST
        rows = db.connection.execute("SELECT component, version FROM component_versions ORDER BY ALL").fetchall()
        assert rows == [("alarms", 1), ("historian", 1), ("historian", 2), ("historian", 3)] + [
            ("mes", v) for v in (1, 2, 3, 4, 5, 6)
        ]


@pytest.mark.parametrize("legacy", [1, 3, 5, 7])
def test_a_file_of_the_old_single_sequence_migrates_to_the_tables_of_a_new_file(legacy: int, tmp_path: Path) -> None:
    with Database(path=tmp_path / "fresh" / "h.duckdb") as fresh:
        expected = _shape(fresh.connection)
    split = [HISTORIAN, Component(name="mes", migrations=MES.migrations[:3]), ALARMS]  # the versions at the split
    with Database(path=tmp_path / "split" / "h.duckdb", components=split) as at_split:
        held = _shape(at_split.connection)
    with duckdb.connect(str(_legacy_file(7, tmp_path / "old7"))) as old:
        assert _shape(old) == held  # the old code's newest file: the same tables, split or not
    path = _legacy_file(legacy, tmp_path)
    with Database(path=path) as db:
        connection = db.connection
        assert _shape(connection) == expected
        assert schema_version(connection) == LAYOUT_VERSION
        assert component_versions(connection) == _LATEST
        old_steps = connection.execute("SELECT version FROM schema_version WHERE version <= 7 ORDER BY 1").fetchall()
        assert [v for (v,) in old_steps] == list(range(1, legacy + 1))  # the old record is kept as it was
        # every row the old file held is still there, the new columns at their documented defaults
        assert connection.execute("SELECT topic, unit FROM series").fetchall() == [("acme/s/a/l1/c/data/t", "degC")]
        assert connection.execute("SELECT value, source, seq FROM samples").fetchall() == [(1.5, "g/n/d", 0)]
        states = connection.execute("SELECT event_key, path, state FROM mes_states").fetchall()
        assert states == ([(7, "acme/s/a/l1/c", 1)] if legacy >= 3 else [])
    assert (tmp_path / f"h.duckdb.v{legacy}.bak").exists()
    with Database(path=path) as again:  # a second open finds nothing to do
        assert component_versions(again.connection) == _LATEST
    assert sorted(p.name for p in tmp_path.glob("h.duckdb.*.bak")) == [f"h.duckdb.v{legacy}.bak"]


def test_a_legacy_file_records_which_versions_it_already_held(tmp_path: Path) -> None:
    with Database(path=_legacy_file(5, tmp_path)) as db:
        rows = db.connection.execute(
            "SELECT component, version, description LIKE '%(legacy version%' FROM component_versions ORDER BY ALL"
        ).fetchall()
    assert rows == [
        ("alarms", 1, False),
        ("historian", 1, True),
        ("historian", 2, True),
        ("historian", 3, True),
        ("mes", 1, True),
        ("mes", 2, True),
        ("mes", 3, False),
        ("mes", 4, False),
        ("mes", 5, False),
        ("mes", 6, False),
    ]


def test_a_file_at_mes_version_5_as_first_committed_answers_the_maintenance_view(tmp_path: Path) -> None:
    # version 5 was edited after dd81cfe (4148cb9 added closes_left_out): a file dd81cfe migrated is at 5 without
    # the column, so the maintenance view failed on it (a binder error); version 6 makes the view again.
    # R10: closed 09:40, the 09:08 re-sent after the reopen left out; R11: reopened at 09:20, an update at 09:40,
    # closed 09:35 (docs/mes.md, cases M10)
    path = _unzipped("mes_v5_dd81cfe.duckdb.gz", tmp_path)
    with Database(path=path) as db:
        assert component_versions(db.connection) == _LATEST
        cursor = db.reader()
        orders = maintenance_orders(cursor, path=None, start=at(24, 6), end=at(24, 14), now=at(24, 15))
        cursor.close()
    assert [(o.maintenance_id, o.closed, o.repair_s, o.description, o.closes_left_out) for o in orders] == [
        ("R10", at(24, 9, 40), 2400.0, "bearing replaced", 1),
        ("R11", at(24, 9, 35), 2100.0, None, 0),
    ]
    assert (tmp_path / "h.duckdb.mes-v5.bak").exists()


def test_a_component_added_later_gets_its_tables_on_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    with Database(path=path, components=[HISTORIAN]) as db:
        assert component_versions(db.connection) == {"historian": 3}
        mes = db.connection.execute(
            "SELECT list(table_name) FROM information_schema.tables WHERE table_name LIKE 'mes%'"
        )
        assert mes.fetchone() == (["mes_events"],)  # the historian's log of MES messages only
    with Database(path=path) as db:
        assert component_versions(db.connection) == _LATEST
        assert db.connection.execute("SELECT count(*) FROM mes_states").fetchone() == (0,)


def test_a_migrated_file_is_refused_by_the_code_of_the_old_sequence(tmp_path: Path) -> None:
    # what the old code checked: the highest schema_version row against its latest, 7
    with Database(path=_legacy_file(3, tmp_path)) as db:
        assert schema_version(db.connection) == LAYOUT_VERSION > LEGACY_LAST


def test_upgrade_to_arrival_order_keeps_every_row_and_takes_new_values(tmp_path: Path) -> None:
    path = _legacy_file(3, tmp_path)
    with duckdb.connect(str(path)) as old:  # the version 3 file's latest value, as the old historian kept it
        old.execute(
            "INSERT INTO latest SELECT series_id, ts, value, NULL, NULL, quality, false, source, received FROM samples"
        )
    with Database(path=path) as new:
        assert new.connection.execute("SELECT value, seq FROM latest").fetchall() == [(1.5, 0)]
        # the old newest millisecond takes a re-delivery once and a new value after its stored one
        row = {"value": 1.5, "timestamp_ms": 1_793_491_201_000, "datatype": "Double"}
        parse = RowParser(max_future_ms=0).parse
        again = parse("acme/s/a/l1/c/data/t", orjson.dumps(row), now_ms=1_793_491_202_000)
        other = parse("acme/s/a/l1/c/data/t", orjson.dumps({**row, "value": 2.5}), now_ms=1_793_491_202_000)
        assert isinstance(again, SampleRow)
        assert isinstance(other, SampleRow)
        report = Store(new.connection).commit(Batch(samples=[again, other], received_ms=[0, 0]))
        assert (report.inserted, report.duplicates) == (1, 1)
        assert new.connection.execute("SELECT seq, value FROM samples ORDER BY seq").fetchall() == [(0, 1.5), (1, 2.5)]
        assert new.connection.execute("SELECT value, seq FROM latest").fetchall() == [(2.5, 1)]


def test_a_newer_layout_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    with Database(path=path) as db:
        db.connection.execute("INSERT INTO schema_version (version, description) VALUES (99, 'from the future')")
    with pytest.raises(
        SchemaTooNew, match=rf"schema version 99 is newer than this uns-hub knows \({LAYOUT_VERSION}\): upgrade"
    ):
        Database(path=path).open()


def test_a_newer_component_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    with Database(path=path) as db:
        db.connection.execute("INSERT INTO component_versions (component, version, description) VALUES ('mes', 9, 'x')")
    for read_only in (False, True):
        with pytest.raises(SchemaTooNew, match=r"\(mes\): schema version 9 is newer than this uns-hub knows \(6\)"):
            Database(path=path, read_only=read_only).open()


def test_read_only_open_of_an_unmigrated_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="schema version 3 needs migrating to 8: open it writable once"):
        Database(path=_legacy_file(3, tmp_path), read_only=True).open()
    path = tmp_path / "only.duckdb"
    with Database(path=path, components=[HISTORIAN]):
        pass
    with pytest.raises(StoreError, match="mes tables at version 0 need migrating to 6: open it writable once"):
        Database(path=path, read_only=True).open()
    with Database(path=path, read_only=True, components=[HISTORIAN]) as db:  # what it reads is there
        assert db.connection.execute("SELECT count(*) FROM samples").fetchone() == (0,)


def test_read_only_open_of_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="start the historian"):
        Database(path=tmp_path / "none.duckdb", read_only=True).open()


def test_a_failed_migration_is_rolled_back_and_named(tmp_path: Path) -> None:
    broken = Component(
        name="broken",
        migrations=(Migration(version=1, description="a bad step", statements=("CREATE TABLE t (x INT)", "NOPE")),),
    )
    path = tmp_path / "h.duckdb"
    with pytest.raises(StoreError, match=r"broken migration 1 \(a bad step\) failed"):
        Database(path=path, components=[HISTORIAN, broken]).open()
    with Database(path=path, components=[HISTORIAN]) as db:
        assert component_versions(db.connection) == {"historian": 3}
        tables = db.connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 't'")
        assert tables.fetchone() == (0,)


def test_a_second_writer_is_told_to_use_http(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    script = (
        "import sys; from uns.store.database import Database\n"
        "from uns.errors import StoreError\n"
        f"try:\n    Database(path={str(path)!r}).open()\nexcept StoreError as e:\n    print(e); sys.exit(3)\n"
    )
    with Database(path=path):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 3, result.stderr
    assert "uns query --api" in result.stdout


# Each released migration's statements, hashed: a migration is never edited after release (uns.store.migrations);
# a change of schema is a new version. mes 5 is hashed as 4148cb9 left it (see legacy/mes_v5_dd81cfe above).
_RELEASED = {
    ("historian", 1): "448a7003273e8eef",
    ("historian", 2): "f258c30c44ce5a34",
    ("historian", 3): "8b1f1d3985642fc9",
    ("mes", 1): "455e4dd715f6c18d",
    ("mes", 2): "479cddd94d8aabc6",
    ("mes", 3): "a058c79c799f85da",
    ("mes", 4): "9b5a060ca01665c2",
    ("mes", 5): "23c1e01d269443d2",
    ("mes", 6): "5395b7ee60de43c9",
    ("alarms", 1): "3af98ff81b93a6db",
}


def test_a_released_migration_s_statements_are_never_edited() -> None:
    written = {
        (component.name, migration.version): hashlib.sha256("\n;\n".join(migration.statements).encode()).hexdigest()[
            :16
        ]
        for component in (HISTORIAN, MES, ALARMS)
        for migration in component.migrations
    }
    # a new version adds a row here; a changed row means a released file would not hold what this code says
    assert written == _RELEASED
