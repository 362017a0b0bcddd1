"""A counting edge node and the plumbing for crash tests: every sample it produced is one counter value."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import duckdb
import orjson
import yaml

from bridges.edge.node import EdgeNode
from bridges.source import TagSpec
from bridges.testing import ScriptedSource
from model.bridges.common import EdgeNodeConfig
from tests.fixtures.running import running
from uns.clock import now_ms
from uns.connect import network_clients
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import DataType

ENTERPRISE = "crash"
GROUP, NODE, DEVICE = "crash-g", "crash-edge", "press"
CELL = f"{ENTERPRISE}/plant/area/line/press"
COUNT_TOPIC = f"{CELL}/data/Count"


def write_plant(path: Path) -> Path:
    """A one-cell plant with the counting edge node's device bound to it."""
    plant = {
        "enterprise": {
            "id": ENTERPRISE,
            "sites": [
                {"id": "plant", "areas": [{"id": "area", "lines": [{"id": "line", "cells": [{"id": "press"}]}]}]}
            ],
        },
        "bindings": [{"group": GROUP, "node": NODE, "device": DEVICE, "path": CELL}],
    }
    path.write_text(yaml.safe_dump(plant))
    return path


class Counter:
    """Pushes 0, 1, 2, ... into an edge node at a steady rate; ``produced`` is what the source handed over."""

    def __init__(self, source: ScriptedSource, rate_hz: float) -> None:
        self.source = source
        self.period = 1.0 / rate_hz
        self.produced = 0
        self._last_ts = 0

    async def run(self, *, until_count: int) -> None:
        start = time.monotonic()
        while self.produced < until_count:
            ts = max(now_ms(), self._last_ts + 1)  # one sample per millisecond at most
            self._last_ts = ts
            self.source.read(DEVICE, {"Count": self.produced}, timestamp_ms=ts)
            self.produced += 1
            delay = start + self.produced * self.period - time.monotonic()
            await asyncio.sleep(max(0.0, delay))


@contextlib.asynccontextmanager
async def counting_edge(
    url: str, data_dir: Path, *, host_id: str = "uns-hub"
) -> AsyncIterator[tuple[ScriptedSource, EdgeNode]]:
    """The real EdgeNode (store-and-forward, replay) over TCP, fed by a scripted counter."""
    source = ScriptedSource(name="counter", tags=[TagSpec(DEVICE, "Count", DataType.Int64)])
    config = EdgeNodeConfig(group=GROUP, node=NODE, primary_host_id=host_id, health_interval_s=1.0)
    clients = network_clients(BrokerUrl.from_str(url))
    node = EdgeNode(config=config, node_id=NODE, source=source, clients=clients, data_dir=data_dir)
    async with running(node, name="test.counting-edge"):
        yield source, node


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``python -m hub.cli <args>``; stdout/stderr to ``log`` (a full pipe would stall a busy hub)."""
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )


def edge_caught_up(node: EdgeNode) -> bool:
    """Online again with nothing left in its store-and-forward buffer."""
    return node.online and node.stats.buffer_depth == 0


def kill9(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


@contextlib.contextmanager
def stopped_at_exit(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


class HealthWatch:
    """The historian's health topic, to know when it has drained its backlog."""

    def __init__(self) -> None:
        self.last: dict[str, object] = {}
        self.reports = 0

    async def follow(self, url: str) -> None:
        async with MqttClient(url=BrokerUrl.from_str(url), client_id=f"health-watch-{os.getpid()}") as client:
            await client.subscribe([f"{ENTERPRISE}/hub/historian/health"], qos=0)
            async for message in client.messages():
                self.last = orjson.loads(message.payload)
                self.reports += 1


def counts_in(db_path: Path) -> tuple[int, int, int, int]:
    """(rows, distinct values, min, max) of the counter in the historian's file (opened read-only)."""
    with duckdb.connect(str(db_path), read_only=True) as db:
        row = db.execute(
            "SELECT count(*), count(DISTINCT value), min(value)::BIGINT, max(value)::BIGINT FROM samples"
            " JOIN series USING (series_id) WHERE topic = ?",
            [COUNT_TOPIC],
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2] or 0), int(row[3] or 0)
