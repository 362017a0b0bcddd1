from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from model.config import HistorianSection, Settings
from tests.uns.historian.fill import T0, add_samples, add_series
from uns.historian.export import add_export_parser, export_parquet, run_export
from uns.store.database import Database

D = timedelta(days=1)
H = timedelta(hours=1)
TEMP = "acme/dallas/packaging/line1/filler/data/Temperature"
STATE = "acme/dallas/packaging/line1/filler/data/State"
OTHER = "acme/austin/packaging/line1/filler/data/Temperature"
MES = "acme/dallas/packaging/line1/filler/mes/production_count"

_SAMPLE_COLUMNS = (
    "topic, path, class, metric, datatype, unit, ts, value, value_text, value_json, quality, historical, source"
)
_SOURCE = f"""
SELECT {_SAMPLE_COLUMNS} FROM (
    SELECT s.topic, s.path, s.class, s.metric, s.datatype, s.unit, x.ts, x.value, x.value_text,
           CAST(x.value_json AS VARCHAR) AS value_json, CAST(x.quality AS VARCHAR) AS quality, x.historical, x.source
    FROM samples x JOIN series s USING (series_id)
) ORDER BY topic, ts
"""  # noqa: S608


def _fill(connection: duckdb.DuckDBPyConnection) -> None:
    add_series(connection, 1, TEMP)
    add_series(connection, 2, STATE, datatype="String")
    add_series(connection, 3, OTHER)
    # three days of temperatures, every 2 hours, with one bad sample
    add_samples(connection, 1, [(T0 + i * 2 * H, 20.0 + i, "bad" if i == 5 else "good") for i in range(36)])
    add_samples(connection, 3, [(T0 + i * 3 * H, -1.5 * i, "good") for i in range(24)])
    add_samples(connection, 2, [(T0 + 30 * H, None, "good")], value_text="running")
    connection.execute(
        "INSERT INTO samples VALUES (2, ?, NULL, NULL, '{\"a\": [1, 2]}', 'uncertain', true, 'g/n', ?, 0)",
        [T0 + 31 * H, T0 + 40 * H],
    )
    for i in range(3):
        connection.execute(
            "INSERT INTO mes_events VALUES (?, ?, 'acme/dallas/packaging/line1/filler', 'production_count', ?, ?, ?)",
            [1000 + i, MES, T0 + i * D + 8 * H, f'{{"good": {i}}}', T0 + i * D + 8 * H],
        )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database(path=tmp_path / "historian.duckdb") as database:
        _fill(database.connection)
        yield database


def _read_back(conn: duckdb.DuckDBPyConnection, root: Path, table: str = "samples") -> list[tuple[object, ...]]:
    glob = (root / table / "**" / "*.parquet").as_posix()
    columns = _SAMPLE_COLUMNS if table == "samples" else "event_key, topic, path, event, ts, body, received"
    return conn.execute(
        f"SELECT {columns} FROM read_parquet('{glob}', hive_partitioning = true) ORDER BY topic, ts"  # noqa: S608
    ).fetchall()


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet"))


def test_round_trip_through_duckdb(db: Database, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    report = export_parquet(db.connection, out, start=None, end=None)
    assert report.days == (date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3))
    assert report.rows == 36 + 24 + 2 + 3
    assert _files(out) == [
        f"{table}/day=2025-01-0{day}/data_0.parquet" for table in ("mes_events", "samples") for day in (1, 2, 3)
    ]
    assert [(d.table, d.day.day, d.rows) for d in report.written] == [
        ("samples", 1, 12 + 8),
        ("samples", 2, 12 + 8 + 2),
        ("samples", 3, 12 + 8),
        ("mes_events", 1, 1),
        ("mes_events", 2, 1),
        ("mes_events", 3, 1),
    ]
    source = db.connection.execute(_SOURCE).fetchall()
    assert _read_back(db.connection, out) == source
    events = db.connection.execute(
        "SELECT event_key, topic, path, event, ts, CAST(body AS VARCHAR), received FROM mes_events ORDER BY ts"
    ).fetchall()
    assert _read_back(db.connection, out, "mes_events") == events


def test_pyarrow_reads_the_hive_layout(db: Database, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    export_parquet(db.connection, out, start=None, end=None)
    dataset = ds.dataset(out / "samples", format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert table.num_rows == 62
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("quality").type == pa.string()
    days = dataset.to_table(filter=ds.field("day") == "2025-01-02", columns=["ts"]).column("ts").to_pylist()
    assert len(days) == 22
    assert min(days) == T0 + D
    assert max(days) < T0 + 2 * D
    first = table.sort_by([("topic", "ascending"), ("ts", "ascending")]).slice(0, 1).to_pylist()[0]
    assert first["topic"] == OTHER
    assert first["ts"] == T0
    assert first["value"] == 0.0


def test_reexport_replaces_days_without_duplicates(db: Database, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    export_parquet(db.connection, out, start=None, end=None)
    db.connection.execute("DELETE FROM samples WHERE series_id = 3 AND ts >= ?", [T0 + D])
    db.connection.execute("UPDATE samples SET value = 99 WHERE series_id = 1 AND ts = ?", [T0 + D])
    report = export_parquet(db.connection, out, start=T0 + D + 5 * H, end=T0 + D + 6 * H)
    assert report.start == T0 + D  # whole days
    assert report.end == T0 + 2 * D
    assert report.days == (date(2025, 1, 2),)
    assert _files(out) == [
        f"{table}/day=2025-01-0{day}/data_0.parquet" for table in ("mes_events", "samples") for day in (1, 2, 3)
    ]
    back = _read_back(db.connection, out)
    assert len(back) == 36 + 24 + 2 - 8  # day 3 was not re-exported: its 8 deleted samples stay in the lake
    assert [row[7] for row in back if row[0] == TEMP and row[6] == T0 + D] == [99.0]
    assert not [p for p in out.iterdir() if p.name.startswith(".staging")]


def test_match_selects_topics(db: Database, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    report = export_parquet(db.connection, out, start=T0, end=T0 + D, match="acme/dallas/#")
    assert report.days == (date(2025, 1, 1),)
    assert {row[0] for row in _read_back(db.connection, out)} == {TEMP}
    assert len(_read_back(db.connection, out, "mes_events")) == 1
    empty = export_parquet(db.connection, tmp_path / "none", start=None, end=None, match="nowhere/#")
    assert (empty.rows, empty.files, empty.days) == (0, (), ())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"match": "acme/#/x"}, "match: topic filter"),
        ({"start": T0 + D, "end": T0}, "is not before end"),
        ({"start": T0.replace(tzinfo=None)}, "naive"),
    ],
)
def test_bad_arguments(db: Database, tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"start": None, "end": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        export_parquet(db.connection, tmp_path / "lake", **arguments)  # type: ignore[arg-type]


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="uns historian")
    add_export_parser(parser.add_subparsers(dest="action", required=True))
    return parser.parse_args(argv)


def test_cli_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Database(path=tmp_path / "data" / "historian.duckdb") as database:
        _fill(database.connection)
    settings = Settings(data_dir=tmp_path / "data")
    out = tmp_path / "lake"
    args = _cli(["export", "--to", str(out), "--start", "2025-01-02", "--end", "2025-01-02T23:00", "--match", "#"])
    assert run_export(args, settings) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "samples/day=2025-01-02: 22 rows in 1 file(s)",
        "mes_events/day=2025-01-02: 1 rows in 1 file(s)",
        f"exported 23 rows in 2 files over 1 days to {out}",
    ]


def test_cli_uses_the_configured_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "elsewhere.duckdb"
    with Database(path=path) as database:
        _fill(database.connection)
    settings = Settings(data_dir=tmp_path / "unused", historian=HistorianSection(path=path))
    assert run_export(_cli(["export", "--to", str(tmp_path / "lake")]), settings) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("exported 65 rows in 6 files over 3 days")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["export"], "--to"),
        (["export", "--to", "x", "--start", "yesterday"], "cannot read"),
        (["export", "--to", "x", "--match", "a/#/b"], "'#' must be the whole last level"),
    ],
)
def test_cli_rejects_bad_flags(argv: list[str], error: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _cli(argv)
    assert exited.value.code == 2
    assert error in capsys.readouterr().err
