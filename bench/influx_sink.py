"""Benchmark: the InfluxDB sink's points/s beside the DuckDB historian, and the whole sink draining a backlog.

Part A (the writer alone, no broker): the same parsed UNS rows (``--topics`` series, batches of
``--batch`` rows, the rows of bench/pg_sink.py) written by ``InfluxWriter`` (line protocol, gzip,
POST /write to a throwaway influxd 1.x) and committed by the historian's ``Store.commit`` (DuckDB)
in the same run; then the same rows again (every point an overwrite), and once more without gzip.

Part B (as users run it): Mosquitto (``max_inflight_messages 10000``), ``uns sink influx`` as its
own process. The sink subscribes and stops, ``--messages`` QoS 1 envelopes are queued in its
persistent session, and it starts again: points/s is the points stored from the first one until
InfluxDB holds them all (the loader and process start-up are not measured).

    uv run python -m bench.influx_sink [--rows 100000] [--messages 50000] [--topics 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from bench.pg_sink import _batches, _duckdb, _messages  # the same rows and baseline as the PostgreSQL bench
from model.sinks import InfluxSinkConfig
from tests.fixtures.influxdb import InfluxServer, run_influxdb
from tests.fixtures.mosquitto import run_mosquitto
from tests.fixtures.processes import stop_process
from tests.fixtures.requires import require
from uns.clock import now_ms
from uns.historian.store import Batch
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl
from uns.sinks.influx import InfluxWriter


def _count(influx: InfluxServer, database: str) -> int:
    try:
        rows = influx.query(database, "SELECT count(value) FROM /.*/")
    except RuntimeError:
        return 0
    return sum(int(str(row[1])) for row in rows)


async def _writer(influx: InfluxServer, database: str, batches: list[Batch], *, gzip: bool) -> float:
    config = InfluxSinkConfig(
        kind="influxdb", name="bench", url=influx.url, api="v1", database=database, create_database=True, gzip=gzip
    )
    writer = InfluxWriter(config=config)
    try:
        await writer.connect()
        rows = sum(len(b) for b in batches)
        started = time.perf_counter()
        for batch in batches:
            await writer.write(batch, sink="bench")
        return rows / (time.perf_counter() - started)
    finally:
        await writer.aclose()


@contextlib.contextmanager
def _sink(config: Path, broker: str, tmp: Path) -> Iterator[None]:
    argv = [sys.executable, "-m", "hub.cli", "sink", "influx", "--config", str(config), "--broker", broker,
            "--data-dir", str(tmp)]  # fmt: skip
    with (tmp / "sink.log").open("a") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, env=os.environ.copy())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "uns-sink ready" not in line:
            raise RuntimeError(f"the sink did not start: {line!r}; see {tmp}/sink.log")
        yield
    finally:
        stop_process(proc, 10)


async def _through_broker(influx: InfluxServer, args: argparse.Namespace, tmp: Path) -> float:
    sink = {"kind": "influxdb", "name": "influx", "url": influx.url, "api": "v1", "database": "bench_b",
            "create_database": True, "batch_rows": args.batch}  # fmt: skip
    config = tmp / "uns.yaml"
    config.write_text(yaml.safe_dump({"sinks": [sink], "enterprise": "acme"}))
    messages = _messages(args.topics, args.messages, now_ms() - 3_600_000)
    with run_mosquitto("max_inflight_messages 10000\n") as broker:
        with _sink(config, broker.url, tmp):
            pass  # its session and subscription now exist: the broker queues for it
        async with MqttClient(url=BrokerUrl.from_str(broker.url), client_id="bench-loader", max_inflight=5000) as pub:
            for i in range(0, len(messages), 5000):
                await pub.publish_many(messages[i : i + 5000])
        with _sink(config, broker.url, tmp):
            deadline = time.perf_counter() + 300
            while (first := _count(influx, "bench_b")) == 0:
                if time.perf_counter() > deadline:
                    raise RuntimeError("nothing stored after 300 s")
                await asyncio.sleep(0.05)
            started = time.perf_counter()
            while (stored := _count(influx, "bench_b")) < args.messages:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"only {stored} of {args.messages} stored after 300 s")
                await asyncio.sleep(0.05)
            return float((args.messages - first) / (time.perf_counter() - started))


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-influx-sink-") as name, run_influxdb(require("influxdb")) as influx:
        tmp = Path(name)
        batches = _batches(_messages(args.topics, args.rows, now_ms() - 86_400_000), args.batch)
        print(f"part A: {args.rows} rows, {args.topics} series, batches of {args.batch}")
        fresh = await _writer(influx, "bench_a", batches, gzip=True)
        again = await _writer(influx, "bench_a", batches, gzip=True)
        plain = await _writer(influx, "bench_plain", batches, gzip=False)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            duck = await asyncio.get_running_loop().run_in_executor(pool, _duckdb, tmp / "bench.duckdb", batches)
        assert _count(influx, "bench_a") == args.rows, "points lost or doubled"
        print(f"  InfluxDB sink writer (gzip): {fresh:10,.0f} points/s  ({fresh / duck:.2f}x DuckDB)")
        print(f"  the same again (overwrites): {again:10,.0f} points/s  ({again / duck:.2f}x DuckDB)")
        print(f"  without gzip:                {plain:10,.0f} points/s  ({plain / duck:.2f}x DuckDB)")
        print(f"  DuckDB historian Store:      {duck:10,.0f} rows/s    (baseline)")
        print(f"part B: a backlog of {args.messages} QoS 1 messages queued in Mosquitto, drained by uns sink influx")
        whole = await _through_broker(influx, args, tmp)
        print(f"  one uns sink process:        {whole:10,.0f} points/s  ({whole / fresh:.2f}x the writer alone)")


def main() -> None:
    """Parse flags and run both parts."""
    parser = argparse.ArgumentParser(prog="bench.influx_sink", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of part A")
    parser.add_argument("--batch", type=int, default=5_000, help="points per write (InfluxDB suggests 5,000)")
    parser.add_argument("--messages", type=int, default=50_000, help="messages of part B")
    parser.add_argument("--topics", type=int, default=1_000, help="distinct series")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
