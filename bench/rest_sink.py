"""Benchmark: the REST sink's messages/s against an ERP API in another process, beside plain httpx posts.

The target is the tests' ERP app (tests/uns/sinks/rest_target.py: bearer check, a dict by
idempotency key) served by uvicorn (h11) in a child process on 127.0.0.1. Three runs of
``--messages`` MES order completions, one request each, one after another:

A. baseline: an ``httpx.AsyncClient`` posting ready-made bodies with the same headers in a loop;
B. the writer alone: ``RestWriter.write`` on batches of ``--batch`` parsed events (templating, keys,
   the outcome memo);
C. as users run it: a ``Sink`` of kind rest on the embedded broker, the events published at QoS 1
   into its session first; messages/s from the first delivery to the last.

B and C are printed with their ratio to A. Each run posts new orders (new keys).

    uv run python -m bench.rest_sink [--messages 3000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson

from model.sinks import RestSinkConfig
from tests.fixtures.asgi import serve
from tests.fixtures.broker import start_broker
from tests.fixtures.waiting import until
from tests.uns.sinks.rest_target import TOKEN, Erp
from uns.clock import now_ms
from uns.connect import network_clients
from uns.historian.rows import EventRow, RowParser
from uns.historian.store import Batch
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message
from uns.sinks.registry import build_sink
from uns.sinks.rest import RestWriter

__all__ = ["main"]

TOPIC = "acme/dallas/bottling/line1/filler/mes/order_complete"


def _payload(run: str, i: int) -> bytes:
    body = {"order_id": f"{run}-{i}", "good": i, "scrap": i % 3, "timestamp_ms": now_ms()}
    return orjson.dumps(body)


def _config(base: str, tmp: Path, batch: int) -> RestSinkConfig:
    return RestSinkConfig.model_validate(
        {
            "kind": "rest",
            "name": "erp",
            "routes": [{"url": base + "/api/orders/${body.order_id}", "body": {"order": "${body.order_id}",
                        "good": "${body.good}", "scrap": "${body.scrap}", "line": "${path}", "at": "${timestamp}"}}],
            "auth": {"kind": "bearer", "token": TOKEN},
            "batch_rows": batch,
            "flush_interval_s": 0.05,
            "dead_letters_path": str(tmp / "dead.sqlite"),
        }
    )  # fmt: skip


async def _serve_forever() -> None:
    async with serve(Erp().app()) as base:
        print(base, flush=True)
        await asyncio.Event().wait()


@contextlib.contextmanager
def _target() -> Iterator[str]:
    child = subprocess.Popen([sys.executable, "-m", "bench.rest_sink", "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        child.terminate()
        child.wait(timeout=10)


async def _baseline(base: str, count: int) -> float:
    bodies = [
        orjson.dumps({"order": f"a-{i}", "good": i, "scrap": i % 3, "line": "x", "at": "t"}) for i in range(count)
    ]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(headers=headers) as client:
        started = time.perf_counter()
        for i, body in enumerate(bodies):
            response = await client.post(f"{base}/api/orders/a-{i}", content=body, headers={"Idempotency-Key": f"a{i}"})
            response.raise_for_status()
        return count / (time.perf_counter() - started)


async def _writer(base: str, tmp: Path, count: int, batch: int) -> float:
    parser = RowParser(max_future_ms=60_000)
    now = now_ms()
    rows = [parser.parse(TOPIC, _payload("b", i), now_ms=now) for i in range(count)]
    events = [row for row in rows if isinstance(row, EventRow)]
    writer = RestWriter(config=_config(base, tmp, batch))
    await writer.connect()
    try:
        started = time.perf_counter()
        for first in range(0, count, batch):
            report = await writer.write(Batch(events=events[first : first + batch]), sink="erp")
            assert report.events == len(events[first : first + batch])
        return count / (time.perf_counter() - started)
    finally:
        await writer.aclose()


async def _sink(base: str, tmp: Path, count: int, batch: int) -> float:
    async with start_broker(tmp) as broker:
        url = BrokerUrl.from_str(str(broker.url))
        config = _config(base, tmp, batch)
        sink = build_sink(config, enterprise="acme", clients=network_clients(url))
        async with sink:
            pass  # the session exists: what is published now waits in it
        async with MqttClient(url=url, client_id="bench-pub") as pub:
            for first in range(0, count, 500):
                await pub.publish_many([Message(TOPIC, _payload("c", i), qos=1) for i in range(first, first + 500)])
        sink = build_sink(config, enterprise="acme", clients=network_clients(url))
        async with sink, asyncio.TaskGroup() as tasks:
            task = tasks.create_task(sink.run())
            await until(lambda: sink.stats.events > 0, within_s=60, what="the first batch")
            started = time.perf_counter() - sink.stats.last_commit_s  # from the start of the first batch
            await until(lambda: sink.stats.events >= count, within_s=600, what="every message")
            elapsed = time.perf_counter() - started
            task.cancel()
        return count / elapsed


async def _run(count: int, batch: int) -> None:
    with _target() as base, tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        baseline = await _baseline(base, count)
        print(f"A  httpx posts (baseline):        {baseline:8.0f} requests/s")
        writer = await _writer(base, tmp, count, batch)
        print(f"B  RestWriter.write:              {writer:8.0f} messages/s  ({writer / baseline:.2f}x A)")
        sink = await _sink(base, tmp, count, batch)
        print(f"C  Sink via the embedded broker:  {sink:8.0f} messages/s  ({sink / baseline:.2f}x A)")


def main() -> None:
    """Run the bench (or, with --serve, the target it starts as a child)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve_forever())
    else:
        asyncio.run(_run(args.messages, args.batch))


if __name__ == "__main__":
    main()
