"""Per edge node and device state the Sparkplug host keeps: session, aliases, metric slots, last values."""

from __future__ import annotations

import dataclasses

from model.envelope import JsonValue
from uns.sparkplug import DataType
from uns.sparkplug.aliases import AliasTable
from uns.sparkplug.node_control import BD_SEQ

__all__ = ["DeviceState", "MetricSlot", "MetricTable", "NodeState"]


@dataclasses.dataclass(slots=True)
class MetricSlot:
    """One born metric: where it goes in the UNS, how to read it, and its last live value.

    The last value is kept as its parts, not as the envelope dict: the envelope's other fields
    are the slot's and its table's, and a dict per metric was the largest part of a birth's memory.
    """

    topic: str
    datatype: DataType
    unit: str | None
    last_value: JsonValue = None
    last_ms: int | None = None
    """Timestamp of the last live (retained) value; None until there is one."""
    transient: bool = False
    """Born ``is_transient`` (Sparkplug 3.0: not to be historized): the flag holds for the session, as the
    datatype does, so a DATA that leaves it out is still transient (Eclipse Tahu's host keeps the birth's)."""


@dataclasses.dataclass(slots=True)
class MetricTable:
    """The metrics of one birth certificate (an edge node's own, or one device's)."""

    path: str
    bound: bool
    source: str = ""
    """Who publishes these metrics: ``<group>/<node>`` or ``<group>/<node>/<device>``; the envelope's ``source``."""
    online: bool = False
    birth_ms: int | None = None
    births: int = 0
    death_ms: int | None = None
    """When the hub learnt of the last death; None until one."""
    stale_ms: int | None = None
    """The newest stale mark on these values since their last birth (a death, no DBIRTH in the node's new session,
    a refused birth); None if none: the next birth's values must sort after the marks (``uns.host.republish``)."""
    restamped: dict[str, tuple[int, int, int]] | None = None
    """The values its last birth stamped after their stale marks, by topic: (the edge's read time of the value held,
    its stamp, the birth's own time); None if none. A reading after the first and before the birth's time is newer
    than the value held (``uns.host.republish``)."""
    born: AliasTable[MetricSlot] = dataclasses.field(default_factory=AliasTable)
    """The birth's metric slots by name and its aliases: ``born.lookup`` is the codec's ``Lookup``."""

    @property
    def slots(self) -> dict[str, MetricSlot]:
        """The born metrics by name."""
        return self.born.metrics

    def reset(self, birth_ms: int) -> None:
        """Start a new birth: forget the last one's slots (aliases, datatypes, last values) and its stale marks.

        Read the marks the new birth sorts after first (``uns.host.republish.BirthMarks.of``).
        """
        self.online = True
        self.birth_ms = birth_ms
        self.stale_ms = None
        self.restamped = None
        self.born.clear()


@dataclasses.dataclass(slots=True)
class DeviceState(MetricTable):
    """A Sparkplug device behind an edge node."""

    device_id: str = ""


@dataclasses.dataclass(slots=True)
class NodeState(MetricTable):
    """A Sparkplug edge node: its session (bdSeq, seq) and its devices."""

    group_id: str = ""
    edge_node_id: str = ""
    bd_seq: int | None = None
    seq: int | None = None
    rebirths_requested: int = 0
    stale_deaths: int = 0
    """NDEATHs of an older session (their bdSeq is not the birth's): the node stays online."""
    bad_payloads: int = 0
    """Payloads of this node or its devices that did not decode."""
    last_error: str | None = None
    """The last undecodable payload: topic and byte offset."""
    last_rebirth_request_ms: int | None = None
    dead_bd_seq: int | None = None
    """The bdSeq of the last NDEATH (handled, or not the session's): an NBIRTH with it is late until a rebirth."""
    devices: dict[str, DeviceState] = dataclasses.field(default_factory=dict)
    degraded: dict[str, str] = dataclasses.field(default_factory=dict)
    """Why the host refused part of this node, by its source (``group/node[/device]``) or ``devices``."""

    def status(self) -> dict[str, object]:
        """The node's status as published on ``<enterprise>/hub/host/nodes/<group>/<node>``."""
        return {
            "group": self.group_id,
            "node": self.edge_node_id,
            "path": self.path,
            "bound": self.bound,
            "online": self.online,
            BD_SEQ: self.bd_seq,
            "seq": self.seq,
            "birth_ms": self.birth_ms,
            "births": self.births,
            "rebirths_requested": self.rebirths_requested,
            "stale_ms": self.stale_ms,
            "degraded": dict(sorted(self.degraded.items())),
            "devices": {
                device_id: {
                    "path": device.path,
                    "bound": device.bound,
                    "online": device.online,
                    "birth_ms": device.birth_ms,
                    "metrics": len(device.slots),
                    "stale_ms": device.stale_ms,
                }
                for device_id, device in sorted(self.devices.items())
            },
        }
