"""Benchmark: rows/s of the SQL source (SQLite and PostgreSQL), against a bare SQLAlchemy read of the same rows.

The source reads a lab table of ``--rows`` rows (an integer key, a timestamp watermark, a value)
into one metric each, in batches of ``--batch`` rows, and saves its cursor after each batch in its
SQLite state file, as it runs under an edge node (without the edge node: its own cost is in the
bridge benches). The baseline, in the same process on the same table: the same keyset SELECT (the
source's statement) with SQLAlchemy Core and the same async driver, rows fetched and dropped: what
any SQLAlchemy poller pays. PostgreSQL runs on a throwaway cluster (``tests/fixtures/postgres.py``)
when ``initdb`` is found.

    uv run python -m bench.sql_source [--rows 100000] [--batch 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bridges.source import Samples
from bridges.sql import SqlSource
from bridges.sql.statement import RowCursor, build_select
from model.bridges.sql import SqlBridgeConfig

__all__ = ["main"]

_T0 = dt.datetime(2026, 11, 24, 0, 0, 0)


def _config(url: str, batch: int) -> SqlBridgeConfig:
    return SqlBridgeConfig.model_validate(
        {
            "name": "bench",
            "edge": {"group": "bench"},
            "url": url,
            "queries": [
                {"name": "lab", "table": "lab", "key": ["id"], "watermark": {"column": "updated_at"},
                 "batch_rows": batch, "interval_s": 3600, "metrics": [{"name": "Lab/Value", "column": "value"}]}
            ],
        }
    )  # fmt: skip


async def _fill(url: str, rows: int) -> None:
    meta = sa.MetaData()
    lab = sa.Table("lab", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                   sa.Column("updated_at", sa.DateTime, index=True), sa.Column("value", sa.Float))  # fmt: skip
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(meta.drop_all)
            await conn.run_sync(meta.create_all)
            step = 10_000
            for start in range(0, rows, step):
                await conn.execute(
                    lab.insert(),
                    [{"id": i, "updated_at": _T0 + dt.timedelta(milliseconds=i // 3), "value": i * 0.5}
                     for i in range(start, min(rows, start + step))],
                )  # fmt: skip
    finally:
        await engine.dispose()


async def _source_rows_per_s(url: str, batch: int, rows: int, state: Path) -> float:
    async with SqlSource(config=_config(url, batch), clients=None, state_path=state) as source:
        events = source.events()
        seen = 0
        started = time.perf_counter()
        while seen < rows:
            event = await anext(events)
            if isinstance(event, Samples):
                seen += sum(1 for s in event.samples if s.name == "Lab/Value")
        await anext(events)  # hands the last batch back: its cursor is saved too
        elapsed = time.perf_counter() - started
        await events.aclose()
    return rows / elapsed


async def _bare_rows_per_s(url: str, batch: int, rows: int) -> float:
    query = _config(url, batch).queries[0]
    engine = create_async_engine(url)
    try:
        seen, cursor = 0, None
        started = time.perf_counter()
        while seen < rows:
            async with engine.connect() as conn:
                result = await conn.execute(build_select(query, dialect=engine.dialect.name, after=cursor))
                got = result.mappings().all()
            seen += len(got)
            last = got[-1]
            cursor = RowCursor(watermark=last["updated_at"], key=(last["id"],))
        elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    return rows / elapsed


async def _measure(label: str, url: str, args: argparse.Namespace, work: Path) -> None:
    await _fill(url, args.rows)
    source, bare = [], []
    for _ in range(args.runs):
        bare.append(await _bare_rows_per_s(url, args.batch, args.rows))
        state = work / "state.sqlite"
        state.unlink(missing_ok=True)  # each run reads every row again
        source.append(await _source_rows_per_s(url, args.batch, args.rows, state))
    s, b = statistics.median(source), statistics.median(bare)
    print(f"{label:<11} source {s:>10,.0f} rows/s   bare SQLAlchemy read {b:>10,.0f} rows/s   ratio {s / b:.2f}")


async def _run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="uns-bench-sql-"))
    try:
        print(f"{args.rows:,} rows, batches of {args.batch:,}, median of {args.runs} runs")
        await _measure("SQLite", f"sqlite+aiosqlite:///{work / 'lab.db'}", args, work)
        bindir = shutil.which("initdb")
        if bindir is None:
            print("PostgreSQL  skipped: initdb not found (apt-get install postgresql)")
            return
        from tests.fixtures.postgres import run_postgres  # the bench's only use of the test fixture

        with run_postgres(str(Path(bindir).parent)) as cluster:
            url = cluster.create_database("bench").replace("postgresql://", "postgresql+psycopg://", 1)
            await _measure("PostgreSQL", url, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
