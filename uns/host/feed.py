"""What a host worker process tells its parent about the core's state: counters, and the sessions that changed.

The parent keeps a mirror of it (``uns.host.mirror``) for the health topic and the web's Sparkplug status.
Plain tuples: they cross a pipe pickled, several times a second.
"""

from __future__ import annotations

from typing import NamedTuple

from uns.host.core import HostCore
from uns.host.counters import HostCounters
from uns.host.tables import MetricTable, NodeState
from uns.sparkplug import DataType

__all__ = [
    "COUNTED",
    "BornSnapshot",
    "Counts",
    "DeviceSnapshot",
    "NodeSnapshot",
    "StateFeed",
    "StateSnapshot",
    "counts_of",
]

BornSnapshot = tuple[tuple[tuple[str, DataType], ...], dict[int, str]]
"""A birth's alias table: (metric name, datatype) in birth order, and alias -> name."""

Counts = tuple[int, int, int, int, int, int, int, dict[str, int]]
"""``HostCounters`` in field order (``COUNTED``), then ``rejected``."""

COUNTED = (
    "messages",
    "metrics_republished",
    "births",
    "deaths",
    "rebirths_requested",
    "rebirths_suppressed",
    "out_of_order",
)
"""The plain counters of ``HostCounters``, in the order ``Counts`` holds them."""


def counts_of(counters: HostCounters) -> Counts:
    """The counters as a tuple, for the pipe."""
    c = counters
    return (
        c.messages,
        c.metrics_republished,
        c.births,
        c.deaths,
        c.rebirths_requested,
        c.rebirths_suppressed,
        c.out_of_order,
        dict(c.rejected),
    )


class DeviceSnapshot(NamedTuple):
    """A device's session; ``born`` only when its alias table changed since the last snapshot."""

    device_id: str
    online: bool
    births: int
    birth_ms: int | None
    death_ms: int | None
    born: BornSnapshot | None


class NodeSnapshot(NamedTuple):
    """An edge node's session and its devices; ``born`` only when its alias table changed since the last snapshot."""

    group_id: str
    edge_node_id: str
    source: str
    online: bool
    births: int
    birth_ms: int | None
    death_ms: int | None
    bd_seq: int | None
    seq: int | None
    stale_deaths: int
    bad_payloads: int
    last_error: str | None
    degraded: dict[str, str]
    born: BornSnapshot | None
    devices: tuple[DeviceSnapshot, ...]


class StateSnapshot(NamedTuple):
    """The core's state beyond its counters: series, unbound devices, the sessions touched since the last one."""

    series: int
    unbound: list[str]
    nodes: tuple[NodeSnapshot, ...]


class StateFeed:
    """Collects the edge nodes a batch touched; snapshots them when asked (in the worker process)."""

    def __init__(self, core: HostCore) -> None:
        self._core = core
        self._touched: set[tuple[str, str]] = set()
        self._born_sent: dict[str, tuple[int, int, int]] = {}
        """Per table (its source): births and alias table sizes when its table was last sent."""

    @property
    def dirty(self) -> bool:
        """Whether a session was touched since the last snapshot."""
        return bool(self._touched)

    def touch(self, topic: str) -> None:
        """A message on ``topic`` (``spBv1.0/<group>/<type>/<node>[/<device>]``) was handled."""
        parts = topic.split("/", 4)
        if len(parts) >= 4:
            self._touched.add((parts[1], parts[3]))

    def touch_all(self) -> None:
        """Every edge node may have changed: what ``HostCore.tick`` made (it names no topic it came from)."""
        self._touched.update(self._core.nodes)

    def snapshot(self) -> StateSnapshot:
        """The touched sessions (then forgotten), with the core's series and unbound devices."""
        nodes = self._core.nodes
        taken = tuple(self._node(nodes[key]) for key in sorted(self._touched) if key in nodes)
        self._touched.clear()
        return StateSnapshot(self._core.series, self._core.unbound, taken)

    def _born(self, table: MetricTable) -> BornSnapshot | None:
        born = table.born
        mark = (table.births, len(born.metrics), len(born.aliases))
        if self._born_sent.get(table.source) == mark:
            return None
        self._born_sent[table.source] = mark
        return tuple((name, slot.datatype) for name, slot in born.metrics.items()), dict(born.aliases)

    def _node(self, node: NodeState) -> NodeSnapshot:
        devices = tuple(
            DeviceSnapshot(device_id, d.online, d.births, d.birth_ms, d.death_ms, self._born(d))
            for device_id, d in node.devices.items()
        )
        return NodeSnapshot(
            node.group_id,
            node.edge_node_id,
            node.source,
            node.online,
            node.births,
            node.birth_ms,
            node.death_ms,
            node.bd_seq,
            node.seq,
            node.stale_deaths,
            node.bad_payloads,
            node.last_error,
            dict(node.degraded),
            self._born(node),
            devices,
        )
