"""``uns sink`` as its own process, killed with SIGKILL mid-stream and restarted: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import yaml

from tests.e2e.crash_rig import kill9, spawn, stopped_at_exit
from tests.fixtures.broker import publisher, start_broker
from tests.fixtures.processes import stop_process
from tests.fixtures.waiting import until
from tests.uns.sinks.crash_stream import killed_mid_stream
from tests.uns.sinks.test_postgres_sink import TOPIC, count, envelope, query
from uns.clock import now_ms
from uns.mqtt.types import Message

TOTAL = 6000


def _write_config(path: Path, dsn: str) -> Path:
    sink = {"kind": "postgres", "name": "pg", "dsn": dsn, "flush_interval_s": 0.1, "batch_rows": 200}
    path.write_text(yaml.safe_dump({"sinks": [sink], "enterprise": "acme"}))
    return path


async def test_a_sink_killed_mid_stream_and_restarted_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, pg_dsn: str
) -> None:
    config = _write_config(tmp_path / "uns.yaml", pg_dsn)
    start = now_ms() - 120_000
    async with start_broker(tmp_path) as broker:
        args = ["sink", "pg", "--config", str(config), "--broker", str(broker.url), "--data-dir", str(tmp_path)]
        killed = await killed_mid_stream(
            args, tmp_path / "sink.log", str(broker.url), lambda i: Message(TOPIC, envelope(i, start + i), qos=1),
            total=TOTAL, chunk=100, stored=lambda: count(pg_dsn), some=300,
            all_in=lambda: count(pg_dsn) == TOTAL, what="samples",
        )  # fmt: skip
        assert killed.at_kill < TOTAL, "the stream ended before the kill: not mid-stream"
        assert killed.exit_code == 0
    values = [v for (v,) in query(pg_dsn, "SELECT value FROM uns.samples ORDER BY ts")]
    assert values == [float(i) for i in range(TOTAL)]
    with psycopg.connect(pg_dsn) as conn:
        latest = conn.execute("SELECT value FROM uns.latest").fetchall()
    assert latest == [(float(TOTAL - 1),)]


async def test_two_sink_processes_share_a_stream_and_one_killed_leaves_nothing_behind(
    tmp_path: Path, pg_dsn: str
) -> None:
    sink = {"kind": "postgres", "name": "pg", "dsn": pg_dsn, "flush_interval_s": 0.1, "batch_rows": 200,
            "shared_group": "pg"}  # fmt: skip
    config = tmp_path / "uns.yaml"
    config.write_text(yaml.safe_dump({"sinks": [sink], "enterprise": "acme"}))
    start = now_ms() - 120_000
    async with start_broker(tmp_path) as broker:
        base = ["sink", "pg", "--config", str(config), "--broker", str(broker.url), "--data-dir", str(tmp_path)]
        logs = [tmp_path / "sink-1.log", tmp_path / "sink-2.log"]
        with (
            stopped_at_exit(spawn([*base, "--client-id", "pg-1"], logs[0])) as first,
            stopped_at_exit(spawn([*base, "--client-id", "pg-2"], logs[1])) as second,
        ):
            await until(lambda: all("uns-sink ready" in log.read_text() for log in logs), within_s=40)
            async with publisher(broker.url) as pub:
                for chunk in range(0, TOTAL, 100):
                    await pub.publish_many([Message(TOPIC, envelope(i, start + i), qos=1)
                                            for i in range(chunk, chunk + 100)])  # fmt: skip
                    if chunk == TOTAL // 3:  # one member dies mid-stream, its unacknowledged messages in flight
                        await asyncio.to_thread(kill9, first)
                    await asyncio.sleep(0.01)
            await until(lambda: count(pg_dsn) == TOTAL, within_s=60, what=f"all {TOTAL} stored by the survivor")
            assert stop_process(second, 20) == 0
    values = [v for (v,) in query(pg_dsn, "SELECT value FROM uns.samples ORDER BY ts")]
    assert values == [float(i) for i in range(TOTAL)]
