"""Benchmark: the PostgreSQL sink beside the DuckDB historian, and two sink processes sharing one stream vs one.

Part A (the writers alone, no broker): the same parsed UNS rows (``--topics`` series, batches of
``--batch`` rows) committed by ``PostgresWriter`` (COPY into a staging table, INSERT ... ON
CONFLICT DO NOTHING, latest upsert; two connections at once for a large batch), by the writer of
commit ``--baseline`` (one connection; loaded from ``git show`` into a temp module) and by the
historian's ``Store.commit`` (DuckDB, Arrow) in the same run, ``--runs`` times (the two PostgreSQL
writers in alternating order); then the same rows again (every one a re-delivery).

Part B (as users run it): Mosquitto (``max_inflight_messages 10000``, as deploy/mosquitto), ``uns
sink pg`` as one process, then as two processes on one shared subscription. The sinks subscribe,
stop, ``--messages`` QoS 1 envelopes are queued in their persistent sessions, and the sinks start
again: rows/s is the rows stored from the first stored row until the database holds them all (so
neither the loader, which alone manages about 15k/s here, nor process start-up is measured). The
one-process run is the baseline of the two-process run.

A throwaway PostgreSQL cluster (tests/fixtures/postgres.py) holds the data: fsync off, as in tests.

    uv run python -m bench.pg_sink [--rows 200000] [--messages 100000] [--topics 1000] [--runs 3] [--part a|b|all]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import yaml

from model.sinks import PostgresSinkConfig
from tests.fixtures.mosquitto import run_mosquitto
from tests.fixtures.postgres import PgCluster, run_postgres
from tests.fixtures.processes import stop_process
from tests.fixtures.requires import require
from uns.clock import now_ms
from uns.historian.rows import RowParser, SampleRow
from uns.historian.store import Batch, Store
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message
from uns.sinks.postgres import PostgresWriter
from uns.store.database import Database

_ENVELOPE = b'{"value":%.3f,"timestamp_ms":%d,"quality":"good","datatype":"Double","unit":"degC"}'


def _messages(topics: int, count: int, start_ms: int) -> list[Message]:
    names = [f"acme/s/a/l/c{n // 100}/data/m{n % 100}" for n in range(topics)]
    return [Message(names[i % topics], _ENVELOPE % (i * 0.5, start_ms + i // topics), qos=1) for i in range(count)]


def _batches(messages: list[Message], size: int) -> list[Batch]:
    parser = RowParser(max_future_ms=300_000)
    now = now_ms()
    rows = [parser.parse(m.topic, m.payload, now_ms=now) for m in messages]
    samples = [row for row in rows if isinstance(row, SampleRow)]
    return [Batch(samples=samples[i : i + size], received_ms=[now] * len(samples[i : i + size]))
            for i in range(0, len(samples), size)]  # fmt: skip


def _baseline_writer(commit: str, tmp: Path) -> type[PostgresWriter]:
    """``PostgresWriter`` as it was at ``commit`` (the previous path, measured in the same run)."""
    repo = Path(__file__).resolve().parent.parent
    show = ["git", "show", f"{commit}:uns/sinks/postgres.py"]
    source = subprocess.run(show, cwd=repo, capture_output=True, text=True, check=True).stdout
    path = tmp / "pg_sink_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("bench_pg_sink_baseline", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    writer: type[PostgresWriter] = module.PostgresWriter
    return writer


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        found = conn.execute("SELECT count(*) FROM uns.samples").fetchone()
    return int(str(found[0])) if found else 0


async def _postgres_writer(
    dsn: str, batches: list[Batch], kind: type[PostgresWriter] = PostgresWriter
) -> tuple[float, float]:
    writer = kind(config=PostgresSinkConfig(kind="postgres", name="bench", dsn=dsn))
    try:
        await writer.connect()
        rows = sum(len(b) for b in batches)
        started = time.perf_counter()
        for batch in batches:
            await writer.write(batch, sink="bench")
        fresh = rows / (time.perf_counter() - started)
        started = time.perf_counter()
        duplicates = 0
        for batch in batches:
            duplicates += (await writer.write(batch, sink="bench")).duplicates
        again = rows / (time.perf_counter() - started)
        assert duplicates == rows, f"re-deliveries stored: {rows - duplicates}"
        assert _count(dsn) == rows
        return fresh, again
    finally:
        await writer.aclose()


def _duckdb(path: Path, batches: list[Batch]) -> float:
    database = Database(path=path, memory_limit_mb=512)
    database.open()
    try:
        store = Store(database.connection)
        rows = sum(len(b) for b in batches)
        started = time.perf_counter()
        for batch in batches:
            store.commit(Batch(samples=list(batch.samples), received_ms=list(batch.received_ms)))
        return rows / (time.perf_counter() - started)
    finally:
        database.close()


@contextlib.contextmanager
def _sinks(count: int, config: Path, broker: str, tmp: Path) -> Iterator[None]:
    procs: list[subprocess.Popen[str]] = []
    try:
        for n in range(count):
            argv = [sys.executable, "-m", "hub.cli", "sink", "pg", "--config", str(config), "--broker", broker,
                    "--client-id", f"bench-pg-{n}", "--data-dir", str(tmp)]  # fmt: skip
            log = (tmp / f"sink-{n}.log").open("w")
            procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, env=os.environ.copy()))
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if "uns-sink ready" not in line:
                raise RuntimeError(f"a sink did not start: {line!r}; see {tmp}/sink-*.log")
        yield
    finally:
        for proc in procs:
            stop_process(proc, 10)


async def _through_broker(cluster: PgCluster, processes: int, args: argparse.Namespace, tmp: Path) -> float:
    """Drain a backlog: the sinks' persistent sessions hold ``--messages`` queued while they were stopped."""
    dsn = cluster.create_database(f"bench_b{processes}")
    config = tmp / f"uns-{processes}.yaml"
    sink = {"kind": "postgres", "name": "pg", "dsn": dsn, "shared_group": "bench", "batch_rows": 10_000,
            "max_pending_rows": 100_000}  # fmt: skip
    config.write_text(yaml.safe_dump({"sinks": [sink], "enterprise": "acme"}))
    messages = _messages(args.topics, args.messages, now_ms() - 3_600_000)
    with run_mosquitto("max_inflight_messages 10000\n") as broker:
        with _sinks(processes, config, broker.url, tmp):
            pass  # their sessions and subscriptions now exist: the broker queues for them
        async with MqttClient(url=BrokerUrl.from_str(broker.url), client_id="bench-loader", max_inflight=5000) as pub:
            for i in range(0, len(messages), 5000):
                await pub.publish_many(messages[i : i + 5000])
        with _sinks(processes, config, broker.url, tmp):
            deadline = time.perf_counter() + 300
            while (first := _count(dsn)) == 0:
                if time.perf_counter() > deadline:
                    raise RuntimeError("nothing stored after 300 s: did the broker keep the queued messages?")
                await asyncio.sleep(0.02)
            started = time.perf_counter()
            while (stored := _count(dsn)) < args.messages:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"only {stored} of {args.messages} stored after 300 s")
                await asyncio.sleep(0.02)
            return float((args.messages - first) / (time.perf_counter() - started))


async def _part_a(cluster: PgCluster, args: argparse.Namespace, tmp: Path) -> None:
    batches = _batches(_messages(args.topics, args.rows, now_ms() - 86_400_000), args.batch)
    baseline = _baseline_writer(args.baseline, tmp)
    print(f"part A: {args.rows} rows, {args.topics} series, batches of {args.batch}; baseline {args.baseline}")
    for run in range(args.runs):
        found: dict[str, tuple[float, float]] = {}
        order = [("new", PostgresWriter), ("old", baseline)]
        for name, kind in order if run % 2 == 0 else order[::-1]:
            found[name] = await _postgres_writer(cluster.create_database(f"bench_a{run}_{name}"), batches, kind)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            path = tmp / f"bench{run}.duckdb"
            duck = await asyncio.get_running_loop().run_in_executor(pool, _duckdb, path, batches)
        (new, new_again), (old, old_again) = found["new"], found["old"]
        print(f" run {run + 1}: new writer {new:9,.0f} rows/s ({new / old:.2f}x old, {new / duck:.2f}x DuckDB);"
              f" old writer (baseline) {old:9,.0f}; DuckDB Store {duck:9,.0f};"
              f" all re-deliveries new {new_again:9,.0f} old {old_again:9,.0f}")  # fmt: skip


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-pg-sink-") as name, run_postgres(require("postgres")) as cluster:
        tmp = Path(name)
        if args.part in ("a", "all"):
            await _part_a(cluster, args, tmp)
        if args.part in ("b", "all"):
            print(f"part B: a backlog of {args.messages} QoS 1 messages in Mosquitto, drained by uns sink processes")
            one = await _through_broker(cluster, 1, args, tmp)
            two = await _through_broker(cluster, 2, args, tmp)
            print(f"  one sink process:            {one:10,.0f} rows/s  (baseline)")
            print(f"  two on $share/bench/acme/#:  {two:10,.0f} rows/s  ({two / one:.2f}x)")


def main() -> None:
    """Parse flags and run both parts."""
    parser = argparse.ArgumentParser(prog="bench.pg_sink", description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000, help="rows of part A")
    parser.add_argument("--batch", type=int, default=10_000, help="rows per committed batch in part A")
    parser.add_argument("--messages", type=int, default=100_000, help="messages of part B")
    parser.add_argument("--topics", type=int, default=1_000, help="distinct series")
    parser.add_argument("--runs", type=int, default=3, help="rounds of part A (old and new writer alternate)")
    parser.add_argument("--baseline", default="e0f5128", help="commit whose PostgreSQL writer is part A's baseline")
    parser.add_argument("--part", choices=["a", "b", "all"], default="all")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
