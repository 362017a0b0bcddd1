"""Benchmark: the SQL insert sink's writer rows/s into a staging table, beside a plain SQLAlchemy insert.

For SQLite (a file) and PostgreSQL (a throwaway cluster, tests/fixtures/postgres.py, fsync off):
``--rows`` parsed MES events in batches of ``--batch``, written three ways in the same run:

A. baseline: SQLAlchemy Core ``insert(table)`` with the batch's ready-made rows as one executemany
   per batch, one transaction each (no templating, no key check);
B. ``SqlInsertWriter.write`` (templates, key column, ON CONFLICT DO NOTHING ... RETURNING);
C. the same batches again through the writer: every row a re-delivery, ignored.

    uv run python -m bench.sql_insert_sink [--rows 5000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from model.sinks import SqlInsertSinkConfig
from tests.fixtures.postgres import run_postgres
from tests.fixtures.requires import require
from uns.clock import now_ms
from uns.historian.rows import EventRow, RowParser
from uns.historian.store import Batch
from uns.sinks.sql_insert import SqlInsertWriter

__all__ = ["main"]

TOPIC = "acme/dallas/bottling/line1/filler/mes/production_count"
_TABLE = (
    "CREATE TABLE {name} (event_key TEXT PRIMARY KEY, work_order TEXT NOT NULL, good INTEGER NOT NULL,"
    " scrap INTEGER NOT NULL, cell TEXT NOT NULL, reported_at TIMESTAMP{tz} NOT NULL)"
)
_COLUMNS = {"work_order": "${body.work_order_id}", "good": "${body.good}", "scrap": "${body.scrap}",
            "cell": "${path}", "reported_at": "${timestamp}"}  # fmt: skip


def _events(count: int) -> list[EventRow]:
    parser = RowParser(max_future_ms=60_000)
    now = now_ms()
    rows = []
    for i in range(count):
        body = {"work_order_id": f"WO-{i // 100}", "good": i, "scrap": i % 3, "timestamp_ms": now - count + i}
        row = parser.parse(TOPIC, orjson.dumps(body), now_ms=now)
        assert isinstance(row, EventRow)
        rows.append(row)
    return rows


async def _baseline(url: str, events: list[EventRow], batch: int) -> float:
    engine = create_async_engine(url)
    table = sa.Table(
        "baseline", sa.MetaData(), sa.Column("event_key", sa.Text, primary_key=True), sa.Column("work_order", sa.Text),
        sa.Column("good", sa.Integer), sa.Column("scrap", sa.Integer), sa.Column("cell", sa.Text),
        sa.Column("reported_at", sa.DateTime(timezone=True)),
    )  # fmt: skip
    values = []
    for event in events:
        body = orjson.loads(event.body)
        values.append({"event_key": f"{event.event_key:016x}", "work_order": body["work_order_id"],
                       "good": body["good"], "scrap": body["scrap"], "cell": event.path,
                       "reported_at": datetime.fromtimestamp(event.ts_ms / 1000, tz=UTC)})  # fmt: skip
    try:
        started = time.perf_counter()
        for first in range(0, len(values), batch):
            async with engine.begin() as conn:
                await conn.execute(sa.insert(table), values[first : first + batch])
        return len(values) / (time.perf_counter() - started)
    finally:
        await engine.dispose()


async def _writer(url: str, tmp: Path, events: list[EventRow], batch: int) -> tuple[float, float]:
    config = SqlInsertSinkConfig.model_validate(
        {
            "kind": "sql_insert",
            "name": "bench",
            "url": url,
            "dead_letters_path": str(tmp / "dead.sqlite"),
            "tables": [{"match": "#", "table": "staging", "columns": _COLUMNS}],
        }
    )
    writer = SqlInsertWriter(config=config)
    await writer.connect()
    try:
        rates = []
        for expected in ("new", "again"):
            started = time.perf_counter()
            for first in range(0, len(events), batch):
                report = await writer.write(Batch(events=events[first : first + batch]), sink="bench")
                done = report.events if expected == "new" else report.duplicate_events
                assert done == len(events[first : first + batch]), report
            rates.append(len(events) / (time.perf_counter() - started))
        return rates[0], rates[1]
    finally:
        await writer.aclose()


def _create(execute: object, tz: str) -> None:
    for name in ("staging", "baseline"):
        execute(_TABLE.format(name=name, tz=tz))  # type: ignore[operator]


async def _one(label: str, url: str, tmp: Path, events: list[EventRow], batch: int) -> None:
    baseline = await _baseline(url, events, batch)
    new, again = await _writer(url, tmp, events, batch)
    print(f"{label:10} A plain insert {baseline:8.0f} rows/s | B writer {new:8.0f} rows/s ({new / baseline:.2f}x A)"
          f" | C re-deliveries {again:8.0f} rows/s ({again / baseline:.2f}x A)")  # fmt: skip


async def _run(rows: int, batch: int) -> None:
    events = _events(rows)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        with sqlite3.connect(tmp / "erp.sqlite") as conn:
            _create(conn.execute, "")
        await _one("SQLite", f"sqlite+aiosqlite:///{tmp / 'erp.sqlite'}", tmp, events, batch)
        with run_postgres(require("postgres")) as cluster:
            dsn = cluster.create_database("bench_sql_insert")
            with psycopg.connect(dsn, autocommit=True) as pg:
                _create(pg.execute, " WITH TIME ZONE")
            await _one("PostgreSQL", dsn.replace("postgresql://", "postgresql+psycopg://"), tmp, events, batch)


def main() -> None:
    """Run the bench."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(_run(args.rows, args.batch))


if __name__ == "__main__":
    main()
