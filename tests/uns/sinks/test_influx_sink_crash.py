"""``uns sink`` writing to InfluxDB as its own process, killed with SIGKILL mid-stream and restarted: nothing lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from tests.e2e.crash_rig import kill9, spawn, stop, stopped_at_exit
from tests.fixtures.broker import publisher, start_broker
from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.waiting import until
from tests.uns.sinks.test_influx_sink import TOPIC, count, envelope, influx
from uns.clock import now_ms
from uns.mqtt.types import Message

__all__ = ["influx"]  # the module's influxd fixture, shared

TOTAL = 6000


async def test_an_influx_sink_killed_mid_stream_and_restarted_loses_nothing(
    tmp_path: Path, influx: InfluxServer
) -> None:
    sink = {"kind": "influxdb", "name": "influx", "url": influx.url, "api": "v1", "database": "crash",
            "create_database": True, "flush_interval_s": 0.1, "batch_rows": 200}  # fmt: skip
    config = tmp_path / "uns.yaml"
    config.write_text(yaml.safe_dump({"sinks": [sink], "enterprise": "acme"}))
    start = now_ms() - 120_000
    async with start_broker(tmp_path) as broker:
        args = ["sink", "influx", "--config", str(config), "--broker", str(broker.url), "--data-dir", str(tmp_path)]
        log = tmp_path / "sink.log"

        async def stream() -> None:
            async with publisher(str(broker.url)) as pub:
                for chunk in range(0, TOTAL, 100):
                    await pub.publish_many([Message(TOPIC, envelope(i, start + i), qos=1)
                                            for i in range(chunk, chunk + 100)])  # fmt: skip
                    await asyncio.sleep(0.02)

        with stopped_at_exit(spawn(args, log)) as first:
            # the sink's session exists before the stream starts: a persistent session queues what it misses
            await until(lambda: "uns-sink ready" in log.read_text(), within_s=30, what="the first sink ready")
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(stream())
                await until(lambda: count(influx, "crash") >= 300, within_s=30, what="some points stored")
                await asyncio.to_thread(kill9, first)
                stored_at_kill = count(influx, "crash")
        assert stored_at_kill < TOTAL, "the stream ended before the kill: not mid-stream"
        with stopped_at_exit(spawn(args, log)) as second:
            await until(lambda: count(influx, "crash") == TOTAL, within_s=60, what=f"all {TOTAL} after the restart")
            assert stop(second) == 0
    rows = influx.query("crash", 'SELECT "value" FROM "Production/GoodCount"')
    assert [value for _, value in rows] == list(range(TOTAL))
