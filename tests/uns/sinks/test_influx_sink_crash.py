"""``uns sink`` writing to InfluxDB as its own process, killed with SIGKILL mid-stream and restarted: nothing lost."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.fixtures.broker import start_broker
from tests.fixtures.influxdb import InfluxServer
from tests.uns.sinks.crash_stream import killed_mid_stream
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
        killed = await killed_mid_stream(
            args, tmp_path / "sink.log", str(broker.url), lambda i: Message(TOPIC, envelope(i, start + i), qos=1),
            total=TOTAL, chunk=100, stored=lambda: count(influx, "crash"), some=300,
            all_in=lambda: count(influx, "crash") == TOTAL, what="points",
        )  # fmt: skip
        assert killed.at_kill < TOTAL, "the stream ended before the kill: not mid-stream"
        assert killed.exit_code == 0
    rows = influx.query("crash", 'SELECT "value" FROM "Production/GoodCount"')
    assert [value for _, value in rows] == list(range(TOTAL))
