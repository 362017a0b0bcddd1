"""An edge node's health metrics: the read latency is the worst since the last report, and stays at the latest
reading's when a report comes without a reading (null only before the first)."""

from __future__ import annotations

from pathlib import Path

from bridges.edge.buffer import DiskBuffer
from bridges.edge.health import EdgeHealth
from bridges.edge.session import EdgeSession
from bridges.source import Sample, TagSpec
from uns.sparkplug import DataType


def test_read_latency_is_the_worst_since_the_last_report_and_kept_between_readings(tmp_path: Path) -> None:
    core = EdgeSession(group="g", node_id="n", tags=[TagSpec("d", "T", DataType.Double)], heartbeat_ms=0)
    with DiskBuffer(directory=tmp_path / "buffer", max_bytes=1 << 20, name="n") as buffer:
        health = EdgeHealth(name="n", health_interval_s=5.0, buffer=buffer)

        def latency(now_ms: int) -> object:
            return health.metrics(core, now_ms=now_ms)["Bridge/ReadLatencyMs"]

        assert latency(0) is None  # nothing read yet
        health.reading([Sample("T", 1.0, 1000)], [], now_ms=1004)
        health.reading([Sample("T", 1.0, 2000)], [], now_ms=2030)
        health.reading([Sample("T", 1.0, 3000)], [], now_ms=3002)
        assert latency(5000) == 30.0  # the worst of the three
        assert latency(10_000) == 2.0  # no reading since: the latest one's, not null
        health.reading([Sample("T", 1.0, 11_000)], [], now_ms=11_007)
        assert latency(15_000) == 7.0
