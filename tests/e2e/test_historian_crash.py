"""Nothing lost: kill -9 the historian (or the whole hub) during ingest; every produced sample is stored once.

The source is a counter (0, 1, 2, ...) fed to the real EdgeNode; the database must end with every
value exactly once, however the crashes fell.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from pathlib import Path

from model.config import HostSection
from tests.e2e.crash_rig import (
    GROUP,
    Counter,
    HealthWatch,
    counting_edge,
    counts_in,
    edge_caught_up,
    kill9,
    spawn,
    stopped_at_exit,
    write_plant,
)
from tests.fixtures.mosquitto import Mosquitto, free_port
from tests.fixtures.processes import stop_process
from tests.fixtures.running import running
from tests.fixtures.waiting import until
from uns.connect import network_clients
from uns.host.service import SparkplugHost
from uns.mqtt.types import BrokerUrl
from uns.settings import load_plant

_ids = itertools.count()


async def _ready(log: Path, occurrences: int) -> None:
    await until(
        lambda: log.read_text(errors="replace").count("uns-hub ready") >= occurrences, within_s=20, what="ready line"
    )


def _more_reports(watch: HealthWatch, seen: int) -> bool:
    return watch.reports > seen


def _produced(counter: Counter, at_least: int) -> bool:
    return counter.produced >= at_least


async def _drained(watch: HealthWatch) -> None:
    """Until two health reports in a row show nothing pending and nothing new received."""
    previous: object = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = watch.reports
        await until(functools.partial(_more_reports, watch, seen), within_s=15, what="historian health report")
        now = (watch.last.get("stored"), watch.last.get("duplicates"), watch.last.get("pending_rows"))
        if now == previous and now[2] == 0:
            return
        previous = now
    raise AssertionError(f"historian never went quiet: {watch.last}")


async def test_kill_9_of_the_historian_during_ingest_loses_nothing(tmp_path: Path, mosquitto: Mosquitto) -> None:
    n = next(_ids)
    plant_file = write_plant(tmp_path / "plant.yaml")
    host_id = f"crash-host-{n}"
    env = {
        "UNS_HISTORIAN__CLIENT_ID": f"crash-historian-{n}",
        "UNS_HISTORIAN__FLUSH_INTERVAL_S": "0.3",
        "UNS_HISTORIAN__HEALTH_INTERVAL_S": "0.3",
    }
    args = ["historian", "--broker", mosquitto.url, "--plant", str(plant_file), "--data-dir", str(tmp_path / "hub")]
    log = tmp_path / "historian.log"
    host = SparkplugHost(
        settings=HostSection(host_id=host_id, groups=[GROUP], republish_qos=1),
        plant=load_plant(plant_file),
        clients=network_clients(BrokerUrl.from_str(mosquitto.url)),
    )
    total = 5000
    watch = HealthWatch()
    historian = spawn(args, log, env)
    async with running(host, name="test.host"), asyncio.TaskGroup() as tasks:
        watcher = tasks.create_task(watch.follow(mosquitto.url), name="test.health")
        await _ready(log, 1)
        async with counting_edge(mosquitto.url, tmp_path / "edge", host_id=host_id) as (source, edge):
            counter = Counter(source, rate_hz=1000)
            producing = tasks.create_task(counter.run(until_count=total), name="test.counter")
            for crash in (1, 2):
                await until(functools.partial(_produced, counter, crash * total // 3), within_s=20, what="samples")
                kill9(historian)  # mid-batch: what was received but not committed must come back
                await asyncio.sleep(0.3)
                historian = spawn(args, log, env)
                await _ready(log, 1 + crash)
            await producing
            await until(functools.partial(edge_caught_up, edge), within_s=60, what="edge online, buffer replayed")
            with stopped_at_exit(historian):
                await _drained(watch)
                assert stop_process(historian, 20) == 0
        watcher.cancel()
    assert counter.produced == total
    rows, distinct, low, high = counts_in(tmp_path / "hub" / "historian.duckdb")
    assert (rows, distinct, low, high) == (total, total, 0, total - 1)


async def test_kill_9_of_the_whole_hub_during_ingest_loses_nothing(tmp_path: Path) -> None:
    """Broker, host and historian die together; the edge node's buffer and replay window cover the gap."""
    plant_file = write_plant(tmp_path / "plant.yaml")
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    env = {"UNS_HISTORIAN__FLUSH_INTERVAL_S": "0.3", "UNS_HISTORIAN__HEALTH_INTERVAL_S": "0.3"}
    args = ["up", "--no-demo", "--mqtt-port", str(port), "--ws-port", "0", "--http-port", "0"]
    args += ["--plant", str(plant_file), "--data-dir", str(tmp_path / "hub")]
    log = tmp_path / "hub.log"
    total = 5000
    watch = HealthWatch()
    hub = spawn(args, log, env)
    async with asyncio.TaskGroup() as tasks:
        await _ready(log, 1)
        watcher = tasks.create_task(watch.follow(url), name="test.health")
        async with counting_edge(url, tmp_path / "edge") as (source, edge):
            counter = Counter(source, rate_hz=1000)
            producing = tasks.create_task(counter.run(until_count=total), name="test.counter")
            for crash in (1, 2):
                await until(functools.partial(_produced, counter, crash * total // 3), within_s=20, what="samples")
                kill9(hub)  # broker, host and historian at once, mid-batch
                await asyncio.sleep(0.5)
                hub = spawn(args, log, env)
                await _ready(log, 1 + crash)
            await producing
            await until(functools.partial(edge_caught_up, edge), within_s=60, what="edge online, buffer replayed")
            with stopped_at_exit(hub):
                await _drained(watch)
                assert stop_process(hub, 20) == 0
        watcher.cancel()
    rows, distinct, low, high = counts_in(tmp_path / "hub" / "historian.duckdb")
    assert (distinct, low, high) == (total, 0, total - 1), log.read_text(errors="replace")[-4000:]
    assert rows == total  # replayed samples that were already stored are not stored twice
