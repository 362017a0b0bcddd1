"""An edge node's counters, problem log and Sparkplug health metrics (``Bridge/...``)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from bridges.edge.buffer import DiskBuffer
from bridges.edge.session import EdgeSession
from bridges.source import Sample
from model.envelope import Quality
from uns.sparkplug import MetricValue

__all__ = ["COUNTERS", "EdgeHealth", "EdgeStats"]

log = logging.getLogger(__name__)

COUNTERS = (
    "connects",
    "births",
    "messages",
    "samples",
    "sent",
    "buffered",
    "replayed",
    "replayed_window",
    "window_replays",
    "writes",
    "refused",
    "errors",
)
"""The counters an edge node keeps (``EdgeHealth.counts``)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EdgeStats:
    """A snapshot of one edge node's counters."""

    online: bool
    """Births are out and the session is live (or replaying)."""
    bd_seq: int | None
    """bdSeq of the current (or last) connection."""
    connects: int
    births: int
    """NBIRTHs published (first births and rebirths)."""
    messages: int
    """Sparkplug messages published."""
    samples: int
    """Samples received from the source."""
    sent: int
    """Samples published live as DDATA."""
    buffered: int
    """Samples appended to the disk buffer."""
    replayed: int
    """Samples published from the buffer as ``is_historical`` (buffered and window samples alike).

    A buffered sample the births carry themselves is not sent again, nor counted; nor is one of a device or metric
    the node no longer has (dropped, an error).
    """
    replayed_window: int
    """Samples already sent that the replay window put back into the buffer, to send again."""
    window_replays: int
    """Times the replay window was put back: connection losses, and starts after a crash."""
    buffer_depth: int
    buffer_bytes: int
    dropped: int
    """Buffered samples dropped: over ``buffer_max_bytes``, or unreadable on disk."""
    writes: int
    """DCMD writes the source accepted."""
    refused: int
    """Commands refused: unknown or non-writable metric, undecodable payload."""
    errors: int
    """Everything that went wrong: bad samples, refused commands, failed writes, drops."""
    read_latency_ms: float | None = None
    """The latest reading's latency (its newest sample's timestamp to its arrival); None before one."""


class EdgeHealth:
    """Counts, problems (logged 1st, 10th, 100th...), read latency and the health metrics of one edge node.

    Args:
        name: the edge node id, for logs.
        health_interval_s: how often health is published; "reading" and "degraded" span a few of them.
        buffer: the node's disk buffer (its depth and drops are part of the health).
    """

    def __init__(self, *, name: str, health_interval_s: float, buffer: DiskBuffer) -> None:
        self._name = name
        self._interval_ms = round(health_interval_s * 1000)
        self._buffer = buffer
        self.counts = dict.fromkeys(COUNTERS, 0)
        self._problems: dict[str, int] = {}
        self._last_event_ms = 0
        self._latency_ms: float | None = None
        self._last_latency_ms: float | None = None  # not reset by metrics(): what stats() reports
        self._degraded_until_ms = 0

    def stats(self, *, online: bool, bd_seq: int | None) -> EdgeStats:
        """A snapshot of the counters."""
        c = self.counts
        return EdgeStats(
            online=online,
            bd_seq=bd_seq,
            connects=c["connects"],
            births=c["births"],
            messages=c["messages"],
            samples=c["samples"],
            sent=c["sent"],
            buffered=c["buffered"],
            replayed=c["replayed"],
            replayed_window=c["replayed_window"],
            window_replays=c["window_replays"],
            buffer_depth=self._buffer.depth,
            buffer_bytes=self._buffer.size_bytes,
            dropped=self._buffer.dropped,
            writes=c["writes"],
            refused=c["refused"],
            errors=c["errors"] + self._buffer.dropped,
            read_latency_ms=self._last_latency_ms,
        )

    def reading(self, samples: Sequence[Sample], problems: Sequence[str], *, now_ms: int) -> None:
        """Note a reading: its problems, its quality (bad quality degrades for two health intervals), its latency."""
        self._last_event_ms = now_ms
        for problem in problems:
            self.count_problem(problem)
        if problems or any(sample.quality is not Quality.good for sample in samples):
            self._degraded_until_ms = now_ms + 2 * self._interval_ms
        if samples:
            latency = self._last_latency_ms = float(max(0, now_ms - max(sample.timestamp_ms for sample in samples)))
            self._latency_ms = latency if self._latency_ms is None else max(self._latency_ms, latency)

    def metrics(self, core: EdgeSession, *, now_ms: int) -> dict[str, MetricValue]:
        """The ``Bridge/...`` health metrics; the read latency is the worst since the last call.

        Without a reading since the last call the latency is the latest reading's (null only before the first),
        so a source read less often than health is reported does not flip it to null and back at every report.
        """
        down = sum(1 for device in core.devices if core.is_down(device))
        latency, self._latency_ms = self._latency_ms, None
        if latency is None:
            latency = self._last_latency_ms
        return {
            "Bridge/Connected": core.devices_up() > 0,
            "Bridge/Reading": now_ms - self._last_event_ms <= 3 * self._interval_ms,
            "Bridge/Degraded": down > 0 or now_ms < self._degraded_until_ms,
            "Bridge/BufferDepth": self._buffer.depth,
            "Bridge/ReadLatencyMs": latency,
            "Bridge/Errors": self.counts["errors"] + self._buffer.dropped,
        }

    def count_problem(self, problem: str) -> None:
        """Count it; log the 1st, 10th, 100th... of each kind (a bad tag polled at 10 Hz must not flood)."""
        self.counts["errors"] += 1
        if len(self._problems) > 10_000:
            self._problems.clear()
        seen = self._problems[problem] = self._problems.get(problem, 0) + 1
        if str(seen).rstrip("0") == "1":
            log.warning("edge %s: %s (%d times)", self._name, problem, seen)
