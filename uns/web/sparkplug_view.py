"""Sparkplug B status for the web view: per edge node and device, from the host's state or decoded by topic prefix."""

from __future__ import annotations

import dataclasses

from uns.errors import SparkplugError
from uns.sparkplug import Lookup, MessageType, Metric, SparkplugTopic, decode_payload, decode_state
from uns.sparkplug.aliases import AliasTable, Born, born
from uns.sparkplug.node_control import bd_seq_of
from uns.web.sparkplug_sessions import NodeSession, Sessions

__all__ = ["DeviceStatus", "EdgeNodeStatus", "HostStatus", "SparkplugView"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeviceStatus:
    """A Sparkplug device of an edge node; ``rebirths`` counts DBIRTHs after the first."""

    device_id: str
    online: bool
    births: int
    rebirths: int
    last_birth_ms: int | None
    last_death_ms: int | None
    last_seen_ms: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EdgeNodeStatus:
    """A Sparkplug edge node: its session (bdSeq, last seq), births, deaths, commands and devices.

    ``rebirths`` counts NBIRTHs after the first; ``stale_deaths`` counts NDEATHs of an older
    session (their bdSeq differs from the birth's), which leave the node online.
    """

    group_id: str
    edge_node_id: str
    online: bool
    bd_seq: int | None
    births: int
    rebirths: int
    last_birth_ms: int | None
    last_death_ms: int | None
    last_seq: int | None
    last_seen_ms: int
    commands: int
    stale_deaths: int
    bad_payloads: int
    last_error: str | None
    degraded: dict[str, str]
    """What the view refused of this node past a bound, by ``group/node[/device]`` or ``devices``."""
    devices: tuple[DeviceStatus, ...]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HostStatus:
    """A Sparkplug Host Application's ``spBv1.0/STATE/<host_id>``."""

    host_id: str
    online: bool
    timestamp: int
    last_seen_ms: int


@dataclasses.dataclass(slots=True)
class _Device:
    device_id: str
    last_seen_ms: int
    online: bool = False
    births: int = 0
    last_birth_ms: int | None = None
    last_death_ms: int | None = None
    heard_ms: int | None = None  # its own latest message: last_seen_ms counts commands to it too
    born: AliasTable[Born] = dataclasses.field(default_factory=AliasTable)

    def status(self, *, commands: bool = True) -> DeviceStatus:
        return DeviceStatus(
            device_id=self.device_id,
            online=self.online,
            births=self.births,
            rebirths=max(0, self.births - 1),
            last_birth_ms=self.last_birth_ms,
            last_death_ms=self.last_death_ms,
            last_seen_ms=_seen_ms(self, commands) or 0,
        )


@dataclasses.dataclass(slots=True)
class _EdgeNode:
    group_id: str
    edge_node_id: str
    last_seen_ms: int
    online: bool = False
    bd_seq: int | None = None
    births: int = 0
    last_birth_ms: int | None = None
    last_death_ms: int | None = None
    last_seq: int | None = None
    commands: int = 0
    stale_deaths: int = 0
    bad_payloads: int = 0
    last_error: str | None = None
    heard_ms: int | None = None  # its own latest message (a device's included): last_seen_ms counts commands too
    born: AliasTable[Born] = dataclasses.field(default_factory=AliasTable)
    devices: dict[str, _Device] = dataclasses.field(default_factory=dict)
    degraded: dict[str, str] = dataclasses.field(default_factory=dict)

    def status(self, *, commands: bool = True) -> EdgeNodeStatus:
        """Its status; without ``commands``, as if no NCMD or DCMD had been seen (see ``SparkplugView.edge_nodes``)."""
        devices = sorted(self.devices.items())
        return EdgeNodeStatus(
            group_id=self.group_id,
            edge_node_id=self.edge_node_id,
            online=self.online,
            bd_seq=self.bd_seq,
            births=self.births,
            rebirths=max(0, self.births - 1),
            last_birth_ms=self.last_birth_ms,
            last_death_ms=self.last_death_ms,
            last_seq=self.last_seq,
            last_seen_ms=_seen_ms(self, commands) or 0,
            commands=self.commands if commands else 0,
            stale_deaths=self.stale_deaths,
            bad_payloads=self.bad_payloads,
            last_error=self.last_error,
            degraded=dict(sorted(self.degraded.items())),
            devices=tuple(
                device.status(commands=commands) for _, device in devices if commands or device.heard_ms is not None
            ),
        )


def _seen_ms(record: _Device | _EdgeNode, commands: bool) -> int | None:
    """When ``record`` was last seen: any message on its topics, or without ``commands`` its own (None: never)."""
    return record.last_seen_ms if commands else record.heard_ms


def _learn(table: AliasTable[Born], metrics: list[Metric]) -> None:
    for metric in metrics:
        name, datatype = metric.name, metric.datatype
        if name is not None and datatype is not None:
            table.add(name, metric.alias, born(datatype))


class SparkplugView:
    """Tracks every edge node, device and Host Application seen on ``spBv1.0/...`` (pure: no I/O, no clock).

    Births set a node or device online and count (a birth after the first is a rebirth); an
    NDEATH with the birth's bdSeq (or none) sets the node and its devices offline; DATA updates
    the last seq; commands are counted. Metric names and aliases from births are kept so DATA
    payloads that carry only aliases can be shown with their names.

    What it keeps is bounded like the host's tables (the same defaults): edge nodes and host
    applications past ``max_nodes`` / ``max_hosts`` and devices past ``max_devices_per_node`` are
    not tracked, and a birth of more than ``max_metrics_per_birth`` metrics (or one that would keep
    more than ``max_series`` names in all) is counted but its names are not kept; each raises
    ``SparkplugError`` naming the topic and the bound, and a refusal that belongs to a tracked node
    marks it degraded.

    Given ``sessions`` (the host's state, ``uns up``), it decodes no payload: births, deaths, bdSeq,
    seq, aliases and refusals are the host's, and the view adds only what topics tell (last seen,
    commands) and the STATE of Host Applications. Without (``uns web`` on its own), it decodes.
    """

    def __init__(
        self,
        *,
        max_nodes: int = 10_000,
        max_devices_per_node: int = 1_000,
        max_metrics_per_birth: int = 10_000,
        max_hosts: int = 1_000,
        max_series: int = 1_000_000,
        sessions: Sessions | None = None,
    ) -> None:
        self._sessions = sessions
        self._nodes: dict[tuple[str, str], _EdgeNode] = {}
        self._hosts: dict[str, HostStatus] = {}
        self._max_nodes = max_nodes
        self._max_devices = max_devices_per_node
        self._max_metrics = max_metrics_per_birth
        self._max_hosts = max_hosts
        self._max_series = max_series
        self._series = 0  # metric names kept over every node and device

    def __len__(self) -> int:
        return len(self._nodes) if self._sessions is None else len(self._sessions.nodes)

    def observe(self, topic: str, payload: bytes, now_ms: int) -> None:
        """Take one message published on a ``spBv1.0/`` topic.

        Raises:
            SparkplugError: the topic is not a Sparkplug topic, or the payload does not decode
                (``PayloadDecodeError`` names the byte offset); the node counts it in ``bad_payloads``.
                Or a bound was passed (the message is not, or only partly, kept).
        """
        sp = SparkplugTopic.from_str(topic)
        if sp.message_type is MessageType.STATE:
            online, stamp = decode_state(payload, topic=topic)
            if sp.edge_node_id not in self._hosts and len(self._hosts) >= self._max_hosts:
                raise SparkplugError(topic, f"host application not tracked: {len(self._hosts)} already, the most kept")
            self._hosts[sp.edge_node_id] = HostStatus(
                host_id=sp.edge_node_id, online=online, timestamp=stamp, last_seen_ms=now_ms
            )
            return
        key = (sp.group_id, sp.edge_node_id)
        node = self._nodes.get(key)
        if node is None:
            if len(self._nodes) >= self._max_nodes:
                raise SparkplugError(
                    topic, f"edge node not tracked: {len(self._nodes)} nodes, max_nodes={self._max_nodes}"
                )
            node = self._nodes[key] = _EdgeNode(group_id=sp.group_id, edge_node_id=sp.edge_node_id, last_seen_ms=now_ms)
        node.last_seen_ms = now_ms
        device: _Device | None = None
        if sp.device_id is not None:
            device = node.devices.get(sp.device_id)
            if device is None:
                if len(node.devices) >= self._max_devices:
                    detail = (
                        f"device not tracked: node has {len(node.devices)}, max_devices_per_node={self._max_devices}"
                    )
                    node.degraded["devices"] = detail
                    raise SparkplugError(topic, detail)
                device = node.devices[sp.device_id] = _Device(device_id=sp.device_id, last_seen_ms=now_ms)
            device.last_seen_ms = now_ms
        kind = sp.message_type
        if kind in (MessageType.NCMD, MessageType.DCMD):
            node.commands += 1  # commands come from hosts: their seq is not the node's
            return
        node.heard_ms = now_ms
        if device is not None:
            device.heard_ms = now_ms
        if not payload or self._sessions is not None:
            return  # an empty message clears a retained one; with the host's state, nothing to decode
        try:
            body = decode_payload(payload, topic=topic).payload
        except SparkplugError as exc:
            node.bad_payloads += 1
            node.last_error = str(exc)
            raise
        metrics = body.metrics
        if kind is MessageType.NDEATH:
            bd_seq = bd_seq_of(metrics)
            if node.bd_seq is not None and bd_seq is not None and bd_seq != node.bd_seq:
                node.stale_deaths += 1  # the will of an older session: this one may well be alive
                return
            node.online = False
            node.last_death_ms = now_ms
            for each in node.devices.values():
                each.online = False
            return
        node.last_seq = body.seq
        if kind is MessageType.NBIRTH:
            node.online = True
            node.births += 1
            node.last_birth_ms = now_ms
            node.bd_seq = bd_seq_of(metrics)
            self._series -= len(node.born)
            node.born.clear()
            for each in node.devices.values():
                each.online = False  # a new node session wants new device births
            node.degraded.clear()
            self._learn(topic, node, node, metrics)
        elif device is not None and kind is MessageType.DBIRTH:
            device.online = True
            device.births += 1
            device.last_birth_ms = now_ms
            self._series -= len(device.born)
            device.born.clear()
            self._learn(topic, node, device, metrics)
        elif device is not None and kind is MessageType.DDEATH:
            device.online = False
            device.last_death_ms = now_ms

    def _learn(self, topic: str, node: _EdgeNode, table: _EdgeNode | _Device, metrics: list[Metric]) -> None:
        source = f"{node.group_id}/{node.edge_node_id}"
        if isinstance(table, _Device):
            source += f"/{table.device_id}"
        detail = None
        if len(metrics) > self._max_metrics:
            detail = f"birth names not kept: {len(metrics)} metrics, max_metrics_per_birth={self._max_metrics}"
        elif self._series + len(metrics) > self._max_series:
            detail = f"birth names not kept: {self._series} kept, max_series={self._max_series}"
        if detail is not None:
            node.degraded[source] = detail
            raise SparkplugError(topic, detail)
        node.degraded.pop(source, None)
        _learn(table.born, metrics)
        self._series += len(table.born)

    def edge_nodes(self, *, commands: bool = True) -> list[EdgeNodeStatus]:
        """Every edge node seen, by group then node id, with its devices by id.

        ``commands`` False: as a reader the broker delivers no NCMD or DCMD to would know them (the web's
        roles but host and admin): no node or device known only from commands sent to it, ``last_seen_ms``
        the time of its own latest message (0 if none), ``commands`` 0.
        """
        if self._sessions is not None:
            return [self._from_host(key, node, commands) for key, node in sorted(self._sessions.nodes.items())]
        return [
            node.status(commands=commands)
            for _, node in sorted(self._nodes.items())
            if commands or node.heard_ms is not None
        ]

    def _from_host(self, key: tuple[str, str], node: NodeSession, commands: bool) -> EdgeNodeStatus:
        # the host's session, with what only topics tell (last seen, commands) from this view
        seen = self._nodes.get(key)
        seen_devices = seen.devices if seen is not None else {}
        seen_ms = None if seen is None else _seen_ms(seen, commands)
        record = _EdgeNode(
            group_id=key[0],
            edge_node_id=key[1],
            last_seen_ms=seen_ms if seen_ms is not None else node.birth_ms or 0,
            online=node.online,
            bd_seq=node.bd_seq,
            births=node.births,
            last_birth_ms=node.birth_ms,
            last_death_ms=node.death_ms,
            last_seq=node.seq,
            commands=seen.commands if seen is not None and commands else 0,
            stale_deaths=node.stale_deaths,
            bad_payloads=node.bad_payloads,
            last_error=node.last_error,
            degraded=dict(node.degraded),
        )
        for device_id, device in node.devices.items():
            seen_device = seen_devices.get(device_id)
            device_ms = None if seen_device is None else _seen_ms(seen_device, commands)
            record.devices[device_id] = _Device(
                device_id=device_id,
                last_seen_ms=device_ms if device_ms is not None else device.birth_ms or 0,
                online=device.online,
                births=device.births,
                last_birth_ms=device.birth_ms,
                last_death_ms=device.death_ms,
            )
        return record.status()

    def hosts(self) -> list[HostStatus]:
        """Every Host Application STATE seen, by host id."""
        return [host for _, host in sorted(self._hosts.items())]

    def alias_lookup(self, topic: SparkplugTopic) -> Lookup | None:
        """Resolves a DATA message's metric names and datatypes from the births seen, for ``decode_payload``."""
        key = (topic.group_id, topic.edge_node_id)
        node: NodeSession | _EdgeNode | None = (
            self._nodes.get(key) if self._sessions is None else self._sessions.nodes.get(key)
        )
        if node is None:
            return None
        device = node.devices.get(topic.device_id) if topic.device_id is not None else None
        return (device or node).born.lookup
