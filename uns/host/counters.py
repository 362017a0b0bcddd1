"""What the host counts (messages, republished metrics, rejections per reason) and rate-limited warnings."""

from __future__ import annotations

import collections
import dataclasses
from enum import StrEnum

__all__ = ["HostCounters", "Lag", "Reason", "RepublishLag"]


class Reason(StrEnum):
    """Why a message or metric was rejected, or what went wrong in a session."""

    bad_topic = "bad_topic"
    payload_too_large = "payload_too_large"
    payload_undecodable = "payload_undecodable"
    unknown_alias = "unknown_alias"
    unknown_datatype = "unknown_datatype"
    bad_value = "bad_value"
    bad_metric_name = "bad_metric_name"
    data_before_birth = "data_before_birth"
    metric_not_in_birth = "metric_not_in_birth"
    seq_gap = "seq_gap"
    bdseq_mismatch = "bdseq_mismatch"
    late_nbirth = "late_nbirth"
    """An NBIRTH with the bdSeq of the NDEATH that ended the node's session (overtaken by its will)."""
    bad_state = "bad_state"
    foreign_state = "foreign_state"
    """Something other than our own online STATE on our STATE topic (we re-assert ours)."""
    birth_too_large = "birth_too_large"
    too_many_devices = "too_many_devices"
    too_many_nodes = "too_many_nodes"
    too_many_series = "too_many_series"
    bad_status = "bad_status"
    """A retained node status document read back at start (``uns.host.seeding``) that cannot be read: ignored."""


@dataclasses.dataclass(slots=True)
class HostCounters:
    """Monotonic counters, published on the health topic."""

    messages: int = 0
    metrics_republished: int = 0
    births: int = 0
    deaths: int = 0
    rebirths_requested: int = 0
    rebirths_suppressed: int = 0
    out_of_order: int = 0
    """Live samples older than the value the host holds: published not retained, the held value kept."""
    rejected: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-able form."""
        return {
            "messages": self.messages,
            "metrics_republished": self.metrics_republished,
            "births": self.births,
            "deaths": self.deaths,
            "rebirths_requested": self.rebirths_requested,
            "rebirths_suppressed": self.rebirths_suppressed,
            "out_of_order": self.out_of_order,
            "rejected": dict(sorted(self.rejected.items())),
        }


class Lag(StrEnum):
    """How the host keeps up with what it has to republish."""

    ok = "ok"
    lagging = "lagging"
    """A backlog of received messages, or republishes waiting long for the broker's acknowledgement."""
    stalled = "stalled"
    """No progress: messages wait and none was processed, or a republish has no acknowledgement, for ``stall_s``."""


@dataclasses.dataclass(slots=True)
class RepublishLag:
    """Judges, at each health tick, whether republishing keeps up; reports transitions only."""

    lag_backlog: int = 1_000
    """Received messages not yet processed from which the host is lagging."""
    lag_unacked_s: float = 1.0
    """Age of the oldest unacknowledged QoS 1 republish from which the host is lagging."""
    stall_s: float = 10.0
    """No progress for this long (or an acknowledgement this late) means stalled."""
    state: Lag = Lag.ok
    _messages: int = -1
    _progress_s: float = 0.0

    def update(self, *, now_s: float, messages: int, backlog: int, oldest_unacked_s: float) -> Lag | None:
        """Take the latest readings (``messages`` is the processed count); return the new state if it changed."""
        if messages != self._messages:
            self._messages, self._progress_s = messages, now_s
        idle_s = now_s - self._progress_s
        if oldest_unacked_s >= self.stall_s or (backlog > 0 and idle_s >= self.stall_s):
            state = Lag.stalled
        elif backlog >= self.lag_backlog or oldest_unacked_s >= self.lag_unacked_s:
            state = Lag.lagging
        else:
            state = Lag.ok
        changed = state if state is not self.state else None
        self.state = state
        return changed
