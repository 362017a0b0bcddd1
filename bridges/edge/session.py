"""The pure core of a Sparkplug edge node: aliases, seq, births, deaths, data and report by exception.

No I/O and no clock: every method that needs the time takes ``now_ms``. The async shell
(``bridges.edge.node``) decides *when* to call these; this module decides *what* goes on the wire.

Aliases are fixed for the life of the session object: the ``Bridge/...`` health metrics from alias 0,
then every device tag in ``Source.tags()`` order, unique across the whole edge node
(``tck-id-payloads-alias-uniqueness``). ``bdSeq`` and ``Node Control/Rebirth`` have none: a host that
never saw our NBIRTH must be able to ask for a rebirth by name
(``tck-id-operational-behavior-data-commands-rebirth-name-aliases``), and ``bdSeq`` only ever travels
in NBIRTH and NDEATH, by name.

Timestamps: a birth's metrics carry when each value was read (a metric never read: the birth's
time), its payload when it was published. Readings are accepted under the node's lock, so each is
either in a birth or sent after it; a buffered sample the birth already carries is not sent again as
historical. Until a metric born null gets a value, each reading of it is stamped after the last
null if it was stamped before (a consumer would otherwise keep the null as the newer value).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Collection, Iterable, Mapping, Sequence

from bridges.edge.commands import Command, decode_commands
from bridges.edge.wire import encode_data
from bridges.source import Sample, Samples, TagSpec
from model.envelope import Quality
from uns.errors import BridgeError
from uns.mqtt.types import Message
from uns.sparkplug import (
    DataType,
    MessageType,
    Metric,
    MetricValue,
    Payload,
    PropertySet,
    PropertyValue,
    SparkplugTopic,
    encode_payload,
)
from uns.sparkplug.aliases import AliasTable, Born, born
from uns.sparkplug.node_control import BD_SEQ, REBIRTH, next_seq
from uns.sparkplug.quality import quality_props
from uns.sparkplug.values import encode_scalar

__all__ = [
    "HEALTH_METRICS",
    "READ_LATENCY_DEADBAND_MS",
    "READ_LATENCY_DEADBAND_SHARE",
    "Accepted",
    "EdgeSession",
]

HEALTH_METRICS: tuple[tuple[str, DataType], ...] = (
    ("Bridge/Connected", DataType.Boolean),
    ("Bridge/Reading", DataType.Boolean),
    ("Bridge/Degraded", DataType.Boolean),
    ("Bridge/BufferDepth", DataType.Int64),
    ("Bridge/ReadLatencyMs", DataType.Double),
    ("Bridge/Errors", DataType.Int64),
)
"""The edge node's own health metrics, published in NBIRTH and as NDATA when they change."""

READ_LATENCY_DEADBAND_MS = 20.0
"""``Bridge/ReadLatencyMs`` is sent when it moves more than this from the value last sent (and more than the share
below): a read's latency jitters by a few ms at every health tick, which is no news; a read slowing down is."""
READ_LATENCY_DEADBAND_SHARE = 0.2
"""... and more than this share of the value last sent (an OPC UA subscription's ~170 ms jitters by ~10 ms)."""

_NUMERIC = frozenset(
    {
        DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64, DataType.UInt8, DataType.UInt16,
        DataType.UInt32, DataType.UInt64, DataType.Float, DataType.Double, DataType.DateTime,
    }
)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Accepted:
    """What report by exception kept of one ``Samples``: named metrics worth sending, and what was wrong."""

    device: str
    metrics: list[Metric]
    problems: list[str]
    """One line per sample left out, naming device and metric (unknown name, value unfit for its datatype)."""
    samples: int
    """How many samples came in (before filtering)."""


@dataclasses.dataclass(slots=True)
class _Tag:
    spec: TagSpec
    alias: int
    value: MetricValue = None
    timestamp_ms: int | None = None
    born_ms: int | None = None
    """The metric's timestamp in the last DBIRTH."""
    born_value: MetricValue = None
    floor_ms: int | None = None
    """Born null and no value since: its next reading is stamped after this (the last null's stamp)."""
    quality: Quality = Quality.bad
    seen: bool = False
    sent_value: MetricValue = None
    sent_quality: Quality | None = None
    sent_ms: int | None = None

    @property
    def datatype(self) -> DataType:
        """The tag's datatype (what the alias table hands the codec)."""
        return self.spec.datatype


@dataclasses.dataclass(slots=True)
class _Device:
    table: AliasTable[_Tag] = dataclasses.field(default_factory=AliasTable)
    """The DBIRTH's tags and aliases: ``table.lookup`` resolves a DCMD's metrics."""
    born: bool = False
    down: bool = False
    birth_ms: int = 0
    """When its last DBIRTH was published: a heartbeat stamps no value earlier (``EdgeSession.heartbeat``)."""

    @property
    def tags(self) -> dict[str, _Tag]:
        """The device's tags by name, in birth order."""
        return self.table.metrics


def _changed(tag: _Tag, value: MetricValue, quality: Quality) -> bool:
    """Report by exception: a quality change, a numeric change beyond the deadband, or any other change."""
    if tag.sent_ms is None or quality != tag.sent_quality:
        return True
    last = tag.sent_value
    if value is None or last is None:
        return value is not last
    if tag.spec.datatype in _NUMERIC and isinstance(value, int | float) and isinstance(last, int | float):
        if value != value or last != last:  # NaN: report a change into or out of it, not NaN to NaN
            return (value != value) != (last != last)
        return abs(value - last) > tag.spec.deadband if tag.spec.deadband > 0 else value != last
    return value != last


def _read_ms(tag: _Tag, now_ms: int) -> int:
    """When the tag's value was read (``now_ms`` if never: a heartbeat only repeats tags read once)."""
    return tag.timestamp_ms if tag.timestamp_ms is not None else now_ms


def _health_changed(name: str, value: MetricValue, last: MetricValue) -> bool:
    """Any change of a health metric, but the read latency's only beyond its deadband."""
    if name != "Bridge/ReadLatencyMs" or not isinstance(value, float) or not isinstance(last, float):
        return value != last
    return abs(value - last) > max(READ_LATENCY_DEADBAND_MS, READ_LATENCY_DEADBAND_SHARE * abs(last))


def _wildcards(pattern: str) -> re.Pattern[str]:
    """A tag pattern whose only wildcards are ``*`` and ``?``.

    A ``[`` is the name's own (``Flags[3]``, an S7 or Logix array element), not ``fnmatch``'s character class.
    """
    return re.compile(fnmatch.translate(pattern.replace("[", "[[]")))


class EdgeSession:
    """Everything an edge node must remember between messages, and the messages it builds.

    Args:
        group: Sparkplug group id.
        node_id: edge node id.
        tags: every device tag (``Source.tags()``), in birth order.
        heartbeat_ms: resend an unchanged metric after this long; 0 = never.
        transient: ``<device>/<metric>`` patterns (``edge.transient_tags``): the tags they match are sent
            ``is_transient``; ``transient_unmatched`` lists the patterns no tag matched.

    Raises:
        BridgeError: a tag is declared twice for the same device.
    """

    def __init__(
        self,
        *,
        group: str,
        node_id: str,
        tags: Sequence[TagSpec],
        heartbeat_ms: int,
        transient: Sequence[str] = (),
    ) -> None:
        self.group = group
        self.node_id = node_id
        self._heartbeat_ms = heartbeat_ms
        self._seq = 0
        self._topics: dict[tuple[MessageType, str | None], str] = {}
        # bdSeq and Node Control/Rebirth go by name only; every other node metric has an alias
        self._health_alias = {name: alias for alias, (name, _datatype) in enumerate(HEALTH_METRICS)}
        self._node_metrics: AliasTable[Born] = AliasTable()
        for name, datatype in ((BD_SEQ, DataType.Int64), (REBIRTH, DataType.Boolean), *HEALTH_METRICS):
            self._node_metrics.add(name, self._health_alias.get(name), born(datatype))
        self._health_sent: dict[str, tuple[MetricValue, int]] = {}
        self._devices: dict[str, _Device] = {}
        alias = len(HEALTH_METRICS)
        patterns = [(p, _wildcards(p.partition("/")[0]), _wildcards(p.partition("/")[2])) for p in transient]
        matched: set[str] = set()
        for spec in tags:
            hits = [p for p, dev, metric in patterns if dev.match(spec.device) and metric.match(spec.name)]
            if hits and not spec.transient:
                spec = dataclasses.replace(spec, transient=True)
            matched.update(hits)
            device = self._devices.setdefault(spec.device, _Device())
            if spec.name in device.tags:
                raise BridgeError(
                    node_id, spec.device, f"metric {spec.name!r} is declared twice on device {spec.device}"
                )
            device.table.add(spec.name, alias, _Tag(spec=spec, alias=alias))
            alias += 1
        self.transient_unmatched = [pattern for pattern in transient if pattern not in matched]
        """The ``transient`` patterns no tag matched (a typo, or a tag the source no longer has)."""
        self._any_transient = any(tag.spec.transient for d in self._devices.values() for tag in d.tags.values())

    # -- topics and seq ---------------------------------------------------------------------------

    def topic(self, kind: MessageType, device: str | None = None) -> str:
        """The topic of one of this node's messages."""
        # built (and validated) once per kind and device, not at every message
        topic = self._topics.get((kind, device))
        if topic is None:
            topic = self._topics[kind, device] = str(
                SparkplugTopic(group_id=self.group, message_type=kind, edge_node_id=self.node_id, device_id=device)
            )
        return topic

    @property
    def devices(self) -> list[str]:
        """Every device id, in birth order."""
        return list(self._devices)

    def is_down(self, device: str) -> bool:
        """True while the device is known not to answer (an unknown device counts as down)."""
        state = self._devices.get(device)
        return state is None or state.down

    def devices_up(self) -> int:
        """Devices that have reported samples and are not down."""
        return sum(1 for d in self._devices.values() if not d.down and any(t.seen for t in d.tags.values()))

    def is_born(self, device: str) -> bool:
        """True once the device's DBIRTH went out in this session (and no DDEATH since); an unknown device is not."""
        return device in self._devices and self._devices[device].born

    def _message(self, kind: MessageType, device: str | None, metrics: list[Metric], now_ms: int) -> Message:
        payload = Payload(timestamp=now_ms, seq=self._seq, metrics=metrics)
        self._seq = next_seq(self._seq)
        return Message(self.topic(kind, device), encode_payload(payload))

    # -- births and deaths ------------------------------------------------------------------------

    def death(self, *, bd_seq: int, now_ms: int) -> Message:
        """The NDEATH (the will, and what a clean stop publishes): QoS 1, not retained, no seq."""
        metric = Metric(name=BD_SEQ, timestamp=now_ms, datatype=DataType.Int64, value=bd_seq)
        return Message(self.topic(MessageType.NDEATH), encode_payload(Payload(timestamp=now_ms, metrics=[metric])), 1)

    def births(
        self, *, bd_seq: int, now_ms: int, health: Mapping[str, MetricValue], owed: Collection[str] = ()
    ) -> list[Message]:
        """NBIRTH (seq 0, every node metric) and a DBIRTH for every device not known to be down, and for ``owed``.

        ``owed``: devices down still owed their DDEATH (a rebirth while their history still queued goes out first):
        born again, so that history and the DDEATH follow; left out, a host would keep their values good.
        """
        self._seq = 0
        metrics = []
        for name, entry in self._node_metrics.metrics.items():
            value: MetricValue = bd_seq if name == BD_SEQ else False if name == REBIRTH else health.get(name)
            alias = self._health_alias.get(name)
            metrics.append(
                Metric(
                    name=name,
                    alias=alias,
                    timestamp=now_ms,
                    datatype=entry.datatype,
                    value=value,
                    is_null=value is None,
                )
            )
        self._health_sent = {name: (health.get(name), now_ms) for name, _ in HEALTH_METRICS}
        out = [self._message(MessageType.NBIRTH, None, metrics, now_ms)]
        for name, device in self._devices.items():
            device.born = False
            if not device.down or name in owed:
                out.append(self._device_birth(name, now_ms))
        return out

    def birth_after_outage(self, device: str, *, now_ms: int) -> list[Message]:
        """The DBIRTH of a device that is up again but not born: its readings may all equal what it died with.

        Report by exception sends nothing for unchanged values, yet consumers hold the device dead until
        a DBIRTH: the reading that ends an outage re-births it whether or not a value changed.
        """
        state = self._devices.get(device)
        if state is None or state.born or state.down:
            return []
        return [self._device_birth(device, now_ms)]

    def awaiting_first_reading(self) -> bool:
        """Whether a device not known to be down has a tag not read yet (its DBIRTH would carry a null).

        A read that failed counts as read (born null, quality bad); a device read in poll groups is
        waited for until every group has been read once.
        """
        return any(
            not state.down and not all(tag.seen for tag in state.tags.values()) for state in self._devices.values()
        )

    def _device_birth(self, device: str, now_ms: int) -> Message:
        state = self._devices[device]
        metrics = []
        for tag in state.tags.values():
            props = dict(quality_props(tag.quality if tag.seen else Quality.bad))
            if tag.spec.unit:
                props["engUnit"] = PropertyValue(type=DataType.String, value=tag.spec.unit)
            tag.born_ms, tag.born_value = _read_ms(tag, now_ms), tag.value
            tag.floor_ms = tag.born_ms if tag.value is None else None
            metrics.append(
                Metric(
                    name=tag.spec.name,
                    alias=tag.alias,
                    timestamp=tag.born_ms,
                    datatype=tag.spec.datatype,
                    value=tag.value,
                    is_null=tag.value is None,
                    is_transient=tag.spec.transient,
                    properties=PropertySet(props),
                )
            )
            if tag.seen:  # the birth carries the last value: report by exception starts from it
                tag.sent_value, tag.sent_quality, tag.sent_ms = tag.value, tag.quality, now_ms
        state.born, state.birth_ms = True, now_ms
        return self._message(MessageType.DBIRTH, device, metrics, now_ms)

    def device_down(self, device: str, *, now_ms: int, publish: bool) -> Message | None:
        """Mark a device down; the DDEATH to send if it was born and ``publish`` is set, else None."""
        state = self._devices.get(device)
        if state is None:
            return None
        state.down = True
        if not (publish and state.born):
            return None
        state.born = False
        return self._message(MessageType.DDEATH, device, [], now_ms)

    def settle(self, *, now_ms: int) -> list[Message]:
        """DDEATH for every device that is down but was (re)born, e.g. to carry its historical data."""
        out = []
        for name, state in self._devices.items():
            if state.down and state.born:
                state.born = False
                out.append(self._message(MessageType.DDEATH, name, [], now_ms))
        return out

    # -- data -------------------------------------------------------------------------------------

    def accept(self, samples: Samples, *, now_ms: int) -> Accepted:
        """Record readings (the device is up again) and keep those report by exception lets through."""
        state = self._devices.get(samples.device)
        if state is None:
            return Accepted(samples.device, [], [f"unknown device {samples.device!r}"], len(samples.samples))
        state.down = False
        metrics: list[Metric] = []
        problems: list[str] = []
        for sample in samples.samples:
            tag = state.tags.get(sample.name)
            if tag is None:
                problems.append(f"device {samples.device}: unknown metric {sample.name!r}")
                continue
            # a value equal to the tag's last (same type) passed this check when it came: most samples of a poll round
            if sample.value is not None and not (type(sample.value) is type(tag.value) and sample.value == tag.value):
                try:
                    encode_scalar(tag.spec.datatype, sample.value)
                except ValueError as exc:
                    problems.append(f"device {samples.device} metric {sample.name!r}: {exc}")
                    continue
            if tag.floor_ms is not None:
                # born null: a reading stamped before that null (in flight during the birth, or an OPC UA
                # value unchanged since long ago) would leave consumers showing the null as the newer
                if sample.timestamp_ms <= tag.floor_ms:
                    sample = dataclasses.replace(sample, timestamp_ms=tag.floor_ms + 1)
                tag.floor_ms = sample.timestamp_ms if sample.value is None else None  # until it has a value
            tag.value, tag.timestamp_ms, tag.quality, tag.seen = sample.value, sample.timestamp_ms, sample.quality, True
            due = self._heartbeat_ms > 0 and tag.sent_ms is not None and now_ms - tag.sent_ms >= self._heartbeat_ms
            if due or _changed(tag, sample.value, sample.quality):
                tag.sent_value, tag.sent_quality, tag.sent_ms = sample.value, sample.quality, now_ms
                metrics.append(self._named(tag.spec, sample))
        return Accepted(samples.device, metrics, problems, len(samples.samples))

    @staticmethod
    def _named(spec: TagSpec, sample: Sample) -> Metric:
        return Metric(
            name=spec.name,
            timestamp=sample.timestamp_ms,
            datatype=spec.datatype,
            value=sample.value,
            is_null=sample.value is None,
            properties=None if sample.quality is Quality.good else quality_props(sample.quality),
        )

    def data(self, device: str, metrics: Iterable[Metric], *, now_ms: int, historical: bool = False) -> list[Message]:
        """DDATA (aliases only) for named metrics, preceded by the device's DBIRTH if it is not born.

        Metrics whose name the device does not have (a buffer written under another config) are left
        out; an empty result means nothing was sendable.
        """
        state = self._devices.get(device)
        if state is None:
            return []
        wire = []
        for metric in metrics:
            tag = state.tags.get(metric.name or "")
            if tag is not None:
                wire.append((tag.alias, tag.spec.datatype, metric, tag.spec.transient))
        if not wire:
            return []
        out = [] if state.born else [self._device_birth(device, now_ms)]
        payload = encode_data(wire, seq=self._seq, now_ms=now_ms, historical=historical)
        self._seq = next_seq(self._seq)
        out.append(Message(self.topic(MessageType.DDATA, device), payload))
        return out

    def lasting(self, device: str, metrics: Sequence[Metric]) -> tuple[Metric, ...]:
        """The metrics worth keeping for later: all but those of transient tags.

        A transient value is live only (not to be historized): store-and-forward and the replay window,
        which exist to complete history, keep none of it, so a fast diagnostic tag cannot crowd real
        history out of the capped buffer. Its last value is still the tag's, and the next birth carries it.
        """
        if not self._any_transient:
            return tuple(metrics)
        state = self._devices.get(device)
        if state is None:
            return tuple(metrics)
        tags = state.tags
        return tuple(m for m in metrics if (tag := tags.get(m.name or "")) is None or not tag.spec.transient)

    def unknown(self, device: str, metrics: Sequence[Metric]) -> list[str]:
        """The names of ``metrics`` this node has no tag for on ``device`` (``data`` leaves them out).

        A buffer written under another config may hold a device or metric the source no longer has.
        """
        state = self._devices.get(device)
        tags = state.tags if state is not None else {}
        return [m.name or "" for m in metrics if (m.name or "") not in tags]

    def not_in_birth(self, device: str, metrics: Sequence[Metric]) -> list[Metric]:
        """Buffered samples less any the device's birth carried itself (same metric, timestamp and value).

        The birth gave the newest reading; repeating it as historical DATA would be a sample stamped
        before the birth it follows. A device not born keeps them all: its samples are what births it.
        """
        state = self._devices.get(device)
        if state is None or not state.born:
            return list(metrics)
        out = []
        for metric in metrics:
            tag = state.tags.get(metric.name or "")
            if tag is None or (metric.timestamp, metric.value) != (tag.born_ms, tag.born_value):
                out.append(metric)
        return out

    def heartbeat(self, *, now_ms: int) -> list[Message]:
        """DDATA with the last value of every metric of a live device not sent for ``heartbeat_ms``.

        Each value is stamped with when it was read, not ``now_ms``: the node knows it as of then. Stamped
        now, it would be newer than a reading taken before the heartbeat but still on its way to the node
        (queued in the source, a poll round in flight), which a host then takes as out of order and does
        not keep as the live value, while the heartbeat's older value stays held until the next change.

        But never before the device's last DBIRTH (which re-announced it): a value unchanged since before a death
        (an OPC UA SourceTimestamp) would stay older than the host's stale mark, and stale where the newest is kept.
        """
        if self._heartbeat_ms <= 0:
            return []
        out = []
        for name, state in self._devices.items():
            if not state.born or state.down:
                continue
            due = [
                t
                for t in state.tags.values()
                if t.seen and t.sent_ms is not None and now_ms - t.sent_ms >= self._heartbeat_ms
            ]
            for tag in due:
                tag.sent_value, tag.sent_quality, tag.sent_ms = tag.value, tag.quality, now_ms
            if due:
                named = [
                    self._named(
                        t.spec, Sample(t.spec.name, t.value, max(_read_ms(t, now_ms), state.birth_ms), t.quality)
                    )
                    for t in due
                ]
                out += self.data(name, named, now_ms=now_ms)
        return out

    def health(self, values: Mapping[str, MetricValue], *, now_ms: int) -> Message | None:
        """NDATA with the health metrics that changed (or are due for a heartbeat), else None."""
        wire = []
        for name, datatype in HEALTH_METRICS:
            value = values.get(name)
            sent = self._health_sent.get(name)
            beat = sent is not None and self._heartbeat_ms > 0 and now_ms - sent[1] >= self._heartbeat_ms
            if sent is None or beat or _health_changed(name, value, sent[0]):
                metric = Metric(timestamp=now_ms, value=value, is_null=value is None)
                wire.append((self._health_alias[name], datatype, metric, False))
                self._health_sent[name] = (value, now_ms)
        if not wire:
            return None
        payload = encode_data(wire, seq=self._seq, now_ms=now_ms, historical=False)
        self._seq = next_seq(self._seq)
        return Message(self.topic(MessageType.NDATA), payload)

    # -- commands ---------------------------------------------------------------------------------

    def commands(self, message: Message) -> list[Command]:
        """What an NCMD or DCMD asks for (``bridges.edge.commands``); raises ``SparkplugError`` if it is not one."""
        tables = {name: state.table for name, state in self._devices.items()}
        return decode_commands(message, node_metrics=self._node_metrics, devices=tables)
