"""The host's state as its worker process last reported it: what ``host.core`` is when ``host.worker`` is on.

It answers what the in-process readers ask of ``HostCore``: ``health()`` and ``counters`` (the health
registry, ``RepublishLag``, ``StateGuard``), ``nodes`` (the web's ``Sessions``: each edge node's and
device's session and birth alias table) and ``unbound``. Fresh to one batch for the counters and to
``uns.host.worker.STATE_EVERY_S`` (100 ms) for sessions; births and deaths come with their batch's answer.
"""

from __future__ import annotations

import dataclasses

from uns.host.counters import HostCounters
from uns.host.feed import COUNTED, BornSnapshot, Counts, DeviceSnapshot, NodeSnapshot, StateSnapshot
from uns.host.health import health_document
from uns.sparkplug.aliases import AliasTable, Born, born

__all__ = ["HostMirror", "MirrorDevice", "MirrorNode"]

_NO_COUNTS: Counts = (0, 0, 0, 0, 0, 0, 0, {})


def _table(snapshot: BornSnapshot) -> AliasTable[Born]:
    table: AliasTable[Born] = AliasTable()
    metrics, aliases = snapshot
    for name, datatype in metrics:
        table.metrics[name] = born(datatype)
    table.aliases.update(aliases)
    return table


@dataclasses.dataclass(slots=True)
class MirrorDevice:
    """A device's session as the worker reported it (``uns.web.sparkplug_sessions.DeviceSession``)."""

    online: bool = False
    births: int = 0
    birth_ms: int | None = None
    death_ms: int | None = None
    born: AliasTable[Born] = dataclasses.field(default_factory=AliasTable)


@dataclasses.dataclass(slots=True)
class MirrorNode(MirrorDevice):
    """An edge node's session as the worker reported it (``uns.web.sparkplug_sessions.NodeSession``)."""

    source: str = ""
    bd_seq: int | None = None
    seq: int | None = None
    stale_deaths: int = 0
    bad_payloads: int = 0
    last_error: str | None = None
    degraded: dict[str, str] = dataclasses.field(default_factory=dict)
    devices: dict[str, MirrorDevice] = dataclasses.field(default_factory=dict)


def _update_device(device: MirrorDevice, snap: DeviceSnapshot) -> None:
    device.online, device.births, device.birth_ms, device.death_ms = snap[1:5]
    if snap.born is not None:
        device.born = _table(snap.born)


def _update_node(node: MirrorNode, snap: NodeSnapshot) -> None:
    node.source, node.online, node.births, node.birth_ms, node.death_ms = snap[2:7]
    node.bd_seq, node.seq, node.stale_deaths, node.bad_payloads, node.last_error = snap[7:12]
    node.degraded = snap.degraded
    if snap.born is not None:
        node.born = _table(snap.born)
    devices = node.devices
    for device_snap in snap.devices:
        device = devices.get(device_snap.device_id)
        if device is None:
            device = devices[device_snap.device_id] = MirrorDevice()
        _update_device(device, device_snap)


class HostMirror:
    """The parent's copy of a worker's ``HostCore`` state (``host.core`` with ``host.worker: true``)."""

    def __init__(self) -> None:
        self.hand_decoded = False
        """Whether republished envelopes carry their reading (set by the shell before the worker starts)."""
        self.counters = HostCounters()
        """Every worker's counts added up, and what the shell counts itself (``StateGuard``)."""
        self.nodes: dict[tuple[str, str], MirrorNode] = {}
        self.unbound: list[str] = []
        self.series = 0
        self.restarts = 0
        """Workers started again after one died or hung."""
        self.messages_lost = 0
        """Messages a dead or hung worker had not answered, and those still waiting when the worker stopped."""
        self._last: Counts = _NO_COUNTS

    def count(self, counts: Counts) -> None:
        """The worker's counters now: add what grew since its last report."""
        counters, last = self.counters, self._last
        for i, name in enumerate(COUNTED):
            grown = counts[i] - last[i]  # type: ignore[operator]
            if grown:
                setattr(counters, name, getattr(counters, name) + grown)
        rejected, last_rejected = counts[7], last[7]
        if rejected != last_rejected:
            for reason, n in rejected.items():
                grown = n - last_rejected.get(reason, 0)
                if grown:
                    counters.rejected[reason] += grown
        self._last = counts

    def update(self, state: StateSnapshot) -> None:
        """Take the sessions the worker reports changed, its series and unbound devices."""
        self.series, self.unbound = state.series, state.unbound
        nodes = self.nodes
        for snap in state.nodes:
            key = (snap.group_id, snap.edge_node_id)
            node = nodes.get(key)
            if node is None:
                node = nodes[key] = MirrorNode()
            _update_node(node, snap)

    def restarted(self, messages_lost: int) -> None:
        """A new worker with a fresh core: its sessions start empty (nodes rebirth), the counts go on adding up."""
        self.restarts += 1
        self.lost(messages_lost)
        self.nodes.clear()
        self.series, self.unbound, self._last = 0, [], _NO_COUNTS

    def lost(self, messages: int) -> None:
        """Messages the worker will not answer (it was stopped with them waiting): counted in ``messages_lost``."""
        self.messages_lost += messages

    def health(self) -> dict[str, object]:
        """``HostCore.health``'s document, and the worker's restarts and messages lost."""
        document = health_document(
            self.nodes.values(), series=self.series, unbound=self.unbound, counters=self.counters
        )
        document["worker"] = {"restarts": self.restarts, "messages_lost": self.messages_lost}
        return document
