"""Export historian samples and MES events to Parquet, hive-partitioned by UTC day, for data-lake tools.

Layout (what Spark, Trino, pyarrow.dataset and DuckDB's ``hive_partitioning`` expect)::

    DIR/samples/day=2025-01-31/data_0.parquet
    DIR/mes_events/day=2025-01-31/data_0.parquet

Files are zstd-compressed; ``ts`` and ``received`` are Parquet ``TIMESTAMP(isAdjustedToUTC=true,
MICROS)``; enums and JSON are plain strings. A day is the unit of export: ``start`` is rounded down
and ``end`` up to UTC midnight, and each day written replaces that day's folder whole (written
aside first, then swapped in), so re-exporting never duplicates rows. A day folder holds what the
latest export of it selected: re-exporting a day with a narrower ``match`` narrows it. Days the
selection has no rows for are left as they are.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from model.config import Settings
from uns.clock import utc_now
from uns.errors import BadArgument
from uns.historian.rollups import floor_time
from uns.mqtt.filters import filter_error, topic_matches
from uns.query.timespec import parse_time
from uns.store.database import Database, database_path, register_arrow

__all__ = ["ExportReport", "ExportedDay", "add_export_parser", "export_parquet", "run_export"]

_DAY = timedelta(days=1)

_SAMPLES = """
SELECT s.topic, s.path, s.class, s.metric, s.datatype, s.unit, x.ts, x.value, x.value_text,
       CAST(x.value_json AS VARCHAR) AS value_json, CAST(x.quality AS VARCHAR) AS quality, x.historical, x.source,
       x.received, x.seq, strftime(x.ts AT TIME ZONE 'UTC', '%Y-%m-%d') AS day
FROM samples x JOIN series s USING (series_id) JOIN {chosen} c USING (series_id)
WHERE x.ts >= $start AND x.ts < $end
"""

_MES = """
SELECT e.event_key, e.topic, e.path, e.event, e.ts, CAST(e.body AS VARCHAR) AS body, e.received,
       strftime(e.ts AT TIME ZONE 'UTC', '%Y-%m-%d') AS day
FROM mes_events e JOIN {chosen} c USING (topic)
WHERE e.ts >= $start AND e.ts < $end
"""

# far enough to hold any sample, near enough for every datetime library
_MIN = datetime(1900, 1, 1, tzinfo=UTC)
_MAX = datetime(2500, 1, 1, tzinfo=UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class ExportedDay:
    """One day folder written.

    Attributes:
        table: ``samples`` or ``mes_events``.
        day: the UTC day.
        rows: rows in its files.
        files: the Parquet files, in their final place.
    """

    table: str
    day: date
    rows: int
    files: tuple[Path, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ExportReport:
    """What one ``export_parquet`` wrote.

    Attributes:
        directory: the export root.
        start: the first instant exported (UTC midnight), None for "from the oldest".
        end: the end of the export, exclusive (UTC midnight), None for "to the newest".
        written: every day folder written, by table then day.
    """

    directory: Path
    start: datetime | None
    end: datetime | None
    written: tuple[ExportedDay, ...]

    @property
    def files(self) -> tuple[Path, ...]:
        """Every Parquet file written."""
        return tuple(path for day in self.written for path in day.files)

    @property
    def rows(self) -> int:
        """Rows written, both tables."""
        return sum(day.rows for day in self.written)

    @property
    def days(self) -> tuple[date, ...]:
        """The distinct UTC days written, oldest first."""
        return tuple(sorted({day.day for day in self.written}))


def export_parquet(
    connection: duckdb.DuckDBPyConnection,
    directory: Path,
    *,
    start: datetime | None,
    end: datetime | None,
    match: str = "#",
    progress: Callable[[ExportedDay], None] | None = None,
) -> ExportReport:
    """Write samples (joined with their series) and MES events of whole UTC days to Parquet.

    Args:
        connection: a historian connection or reader cursor (only read from).
        directory: the export root; created when missing.
        start: export from this day on (rounded down to UTC midnight); None from the oldest.
        end: export up to this instant's day end (rounded up to UTC midnight); None to the newest.
        match: MQTT topic filter over UNS topics: only matching series and MES events.
        progress: called once per day folder swapped into place.

    Raises:
        ValueError: ``match`` is not a valid filter, a time is naive, or ``start`` is after ``end``.
    """
    reason = filter_error(match)
    if reason is not None:
        raise ValueError(f"match: {reason}")
    low = floor_time(start, _DAY) if start is not None else None
    high = _ceil_day(end) if end is not None else None
    if low is not None and high is not None and low >= high:
        raise ValueError(f"start {low.isoformat()} is not before end {high.isoformat()}")
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f".staging-{uuid.uuid4().hex}"
    params = {"start": low or _MIN, "end": high or _MAX}
    written: list[ExportedDay] = []
    try:
        chosen = _register_topics(connection, "series", "series_id", params, match)
        written += _export(connection, _SAMPLES.format(chosen=chosen), params, staging, directory, "samples", progress)
        chosen = _register_topics(connection, "mes_events", "topic", params, match)
        written += _export(connection, _MES.format(chosen=chosen), params, staging, directory, "mes_events", progress)
    finally:
        for name in ("series", "mes_events"):
            connection.unregister(f"_export_{name}")
        shutil.rmtree(staging, ignore_errors=True)
    return ExportReport(directory=directory, start=low, end=high, written=tuple(written))


def _ceil_day(moment: datetime) -> datetime:
    low = floor_time(moment, _DAY)
    return low if low == moment else low + _DAY


def _register_topics(
    connection: duckdb.DuckDBPyConnection, table: str, key: str, params: dict[str, datetime], match: str
) -> str:
    """Register the keys of ``table`` whose topic matches as a view; MQTT matching rules stay in one place."""
    if table == "series":
        rows = connection.execute("SELECT series_id, topic FROM series").fetchall()
    else:  # few distinct MES topics: one per cell and event kind
        rows = connection.execute(
            "SELECT DISTINCT topic, topic FROM mes_events WHERE ts >= $start AND ts < $end", params
        ).fetchall()
    keys = [row[0] for row in rows if topic_matches(str(row[1]), match)]
    column = pa.array(keys, type=pa.uint32() if key == "series_id" else pa.string())
    name = f"_export_{table}"
    register_arrow(connection, name, pa.table({key: column}))
    return name


def _export(
    connection: duckdb.DuckDBPyConnection,
    query: str,
    params: dict[str, datetime],
    staging: Path,
    directory: Path,
    table: str,
    progress: Callable[[ExportedDay], None] | None,
) -> list[ExportedDay]:
    target = staging / table
    staging.mkdir(exist_ok=True)
    quoted = target.as_posix().replace("'", "''")
    connection.execute(
        f"COPY ({query}) TO '{quoted}' (FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd, OVERWRITE_OR_IGNORE)",
        params,
    ).fetchall()  # drain it: DuckDB refuses other work on an open result
    written: list[ExportedDay] = []
    if not target.exists():
        return written
    for folder in sorted(target.glob("day=*")):
        files = sorted(folder.glob("*.parquet"))
        if not files:
            continue
        rows = connection.execute(
            "SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata($files)",
            {"files": [f.as_posix() for f in files]},
        ).fetchall()
        final = directory / table / folder.name
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # move the old day aside first: a failure leaves old or new, never neither
            final.rename(staging / f"old-{table}-{folder.name}")
        folder.rename(final)
        day = ExportedDay(
            table=table,
            day=date.fromisoformat(folder.name.removeprefix("day=")),
            rows=int(rows[0][0]) if rows else 0,
            files=tuple(final / f.name for f in files),
        )
        written.append(day)
        if progress is not None:
            progress(day)
    return written


def _parse_time(text: str) -> datetime:
    """The same time forms as ``uns query`` (ISO with or without offset, ``now``, ``-7d``), UTC by default."""
    try:
        return parse_time(text, now=utc_now(), tz=UTC, field="time")
    except BadArgument as exc:
        raise argparse.ArgumentTypeError(exc.reason) from None


def _parse_filter(text: str) -> str:
    reason = filter_error(text)
    if reason is not None:
        raise argparse.ArgumentTypeError(reason)
    return text


def add_export_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add ``export`` (``uns historian export --to DIR [--start] [--end] [--match]``) to a subcommand group."""
    parser = subparsers.add_parser(
        "export", help="write samples and MES events to Parquet, one folder per UTC day (hive layout)"
    )
    parser.add_argument("--to", type=Path, required=True, help="export folder (samples/, mes_events/ inside)")
    parser.add_argument("--start", type=_parse_time, help="first day to export, ISO date or time (UTC unless given)")
    parser.add_argument("--end", type=_parse_time, help="export up to the end of this day, ISO date or time")
    parser.add_argument("--match", type=_parse_filter, default="#", help="MQTT filter over UNS topics (default '#')")
    return parser


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``uns historian export`` against the settings' database (opened read-only); returns the exit code."""
    path = database_path(settings.historian, settings.data_dir)

    def _progress(day: ExportedDay) -> None:
        print(f"{day.table}/day={day.day.isoformat()}: {day.rows} rows in {len(day.files)} file(s)", flush=True)

    try:
        with Database(path=path, read_only=True) as database:
            report = export_parquet(
                database.connection, args.to, start=args.start, end=args.end, match=args.match, progress=_progress
            )
    except ValueError as exc:
        print(f"uns historian export: {exc}", file=sys.stderr)
        return 2
    print(f"exported {report.rows} rows in {len(report.files)} files over {len(report.days)} days to {args.to}")
    return 0
