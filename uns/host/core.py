"""The Sparkplug host's pure core: tracks edge node sessions and maps each message to UNS republishes.

No I/O and no clock: ``handle`` takes the bytes and the time and returns the messages to publish
(JSON envelopes on ISA-95 topics, node status, and ``Node Control/Rebirth`` commands).
"""

from __future__ import annotations

import logging

import orjson

from model.envelope import EnvelopeDict, Quality, build_envelope
from model.equipment import Plant
from model.topic import TopicError
from uns.errors import PayloadDecodeError
from uns.host.awaited_births import DBIRTH_GRACE_MS, AwaitedBirths
from uns.host.bounds import HostBounds
from uns.host.counters import HostCounters, Reason
from uns.host.directory import Directory
from uns.host.health import health_document
from uns.host.late_births import LateBirths
from uns.host.republish import TYPE_NAMES, BirthMarks, after_restamp, republish_message, stale_marks
from uns.host.seeding import StatusDocuments, seed_marks
from uns.host.tables import DeviceState, MetricSlot, MetricTable, NodeState
from uns.host.template_merge import merged_over_held
from uns.logs import RateLimitedLog
from uns.mqtt.types import Message
from uns.normalise import json_value, metric_topic, quality_of, unit_of_metric
from uns.sparkplug import (
    DataType,
    DecodedPayload,
    MessageType,
    Metric,
    Payload,
    Template,
    decode_payload,
)
from uns.sparkplug.node_control import bd_seq_of, next_seq, rebirth_command

__all__ = ["HostCore", "hub_topic", "node_status_prefix"]

log = logging.getLogger(__name__)

_PROBLEM_REASONS = {
    "unknown_alias": Reason.unknown_alias,
    "unknown_datatype": Reason.unknown_datatype,
    "bad_value": Reason.bad_value,
}


def hub_topic(enterprise: str, *levels: str) -> str:
    """A topic of the hub's own status tree, ``<enterprise>/hub/...``."""
    return "/".join((enterprise, "hub", *levels))


def node_status_prefix(enterprise: str) -> str:
    """Where the host publishes each edge node's status, retained: this, then ``<group>/<node>``."""
    return hub_topic(enterprise, "host", "nodes", "")


class HostCore:
    """Sparkplug B primary host logic (Sparkplug 3.0, host application chapter)."""

    def __init__(
        self,
        *,
        plant: Plant,
        max_payload_bytes: int = 1_048_576,
        rebirth_min_interval_ms: int = 5_000,
        republish_qos: int = 0,
        bounds: HostBounds | None = None,
        dbirth_grace_ms: int = DBIRTH_GRACE_MS,
    ) -> None:
        self._plant = plant
        self._enterprise = plant.enterprise.id
        self._status_prefix = node_status_prefix(self._enterprise)
        self._max_payload = max_payload_bytes
        self._rebirth_interval = rebirth_min_interval_ms
        self._qos = republish_qos
        self.hand_decoded = False
        """Whether each republished envelope carries its reading (``Message.decoded``): for in-process subscribers."""
        self._bounds = bounds or HostBounds()
        self._directory = Directory(plant=plant, bounds=self._bounds, reject=self._reject, status=self._status)
        self._nodes = self._directory.nodes
        self._series = 0
        """Metric slots over every node and device: what ``host.max_series`` bounds."""
        self._late = LateBirths()
        self._awaited = AwaitedBirths(dbirth_grace_ms)
        self.due_ms: int | None = None
        """When ``tick`` next has something to do (kept at each change); None while nothing waits for time."""
        self.counters = HostCounters()
        self.statuses_made = 0
        """Node status messages made so far: a worker answers a batch that made one with its state (``seeds``)."""
        self._warn = RateLimitedLog(log)

    @property
    def nodes(self) -> dict[tuple[str, str], NodeState]:
        """Every edge node seen, by (group, node)."""
        return self._nodes

    @property
    def unbound(self) -> list[str]:
        """Sparkplug devices and nodes no binding names, as ``group/node[/device]``."""
        return self._directory.unbound

    def handle(self, topic: str, payload: bytes, now_ms: int) -> list[Message]:
        """Process one ``spBv1.0/...`` message; return what to publish because of it."""
        self.counters.messages += 1
        if len(payload) > self._max_payload:
            self._reject(Reason.payload_too_large, topic, f"{len(payload)} bytes > {self._max_payload}", now_ms)
            return []
        sp_topic = self._directory.topic(topic, now_ms)
        if sp_topic is None:
            return []
        kind = sp_topic.message_type
        if kind in (MessageType.STATE, MessageType.NCMD, MessageType.DCMD):
            return []  # other hosts' state and commands are not ours to republish
        out: list[Message] = []
        node = self._directory.node(sp_topic, topic, now_ms)
        if node is None:
            return out
        if kind is MessageType.NDEATH:
            self._on_ndeath(node, topic, payload, now_ms, out)
            return out
        table: MetricTable | None = node
        if sp_topic.device_id is not None:
            table = self._directory.device(node, sp_topic.device_id, topic, now_ms, out)
        if table is None:
            return out
        lookup = None if kind in (MessageType.NBIRTH, MessageType.DBIRTH) else table.born.lookup
        try:
            decoded = decode_payload(payload, topic=topic, lookup=lookup)
        except PayloadDecodeError as exc:
            self._undecodable(node, topic, exc, now_ms)
            return []
        if kind is MessageType.NBIRTH:
            self._on_nbirth(node, topic, decoded, now_ms, out)
        elif kind is MessageType.NDATA:
            self._on_data(node, node, topic, decoded, now_ms, out)
        elif isinstance(table, DeviceState):
            if kind is MessageType.DBIRTH:
                self._on_dbirth(node, table, topic, decoded, now_ms, out)
            elif kind is MessageType.DDATA:
                self._on_data(node, table, topic, decoded, now_ms, out)
            else:
                self._on_ddeath(node, table, topic, decoded, now_ms, out)
        return out

    # -- message kinds ------------------------------------------------------------------------

    def _on_nbirth(self, node: NodeState, topic: str, decoded: DecodedPayload, now_ms: int, out: list[Message]) -> None:
        payload = decoded.payload
        bd_seq = bd_seq_of(payload.metrics)
        if self._late.is_late(node, bd_seq):  # a birth in flight when its session died, overtaken by the will
            self._reject(Reason.late_nbirth, topic, f"NBIRTH bdSeq {bd_seq} after its NDEATH: offline", now_ms)
            if node.online:  # the session held is over too: the node had connected again as the dead one
                self._end_session(node, bd_seq, now_ms, out)
            self._late.note(node, now_ms)
            self._update_due()
            return
        self._late.born(node)
        if payload.seq not in (None, 0):
            self._warn.warning(
                (Reason.seq_gap, topic), "%s on %s: NBIRTH seq must be 0, got %s", Reason.seq_gap, topic, payload.seq
            )
        if self._refuse_birth(node, node, "NBIRTH", topic, payload, now_ms, out):
            return
        node.degraded.clear()  # a new session: its devices are checked again at their births
        self._series -= len(node.slots)
        marks = BirthMarks.of(node)  # before the reset forgets the slots
        node.reset(payload.timestamp or now_ms)
        node.seq = payload.seq or 0
        node.bd_seq = None
        node.births += 1
        self.counters.births += 1
        self._awaited.expect(node, now_ms)  # its devices offline until their DBIRTH, stale if none comes
        if bd_seq is not None:
            node.bd_seq = bd_seq
        self._count_problems(decoded, topic, now_ms)
        self._birth_metrics(node, topic, payload, now_ms, out, marks)
        log.info(
            "NBIRTH %s/%s bdSeq=%s metrics=%d -> %s",
            node.group_id,
            node.edge_node_id,
            node.bd_seq,
            len(node.slots),
            node.path,
        )
        self._update_due()
        out.append(self._status(node))

    def _on_dbirth(
        self,
        node: NodeState,
        device: DeviceState,
        topic: str,
        decoded: DecodedPayload,
        now_ms: int,
        out: list[Message],
    ) -> None:
        if not node.online:
            self._data_before_birth(node, topic, now_ms, out)
            return
        self._check_seq(node, topic, decoded.payload, now_ms, out)
        if self._refuse_birth(node, device, "DBIRTH", topic, decoded.payload, now_ms, out):
            return
        node.degraded.pop(device.source, None)
        self._awaited.born(node, device)
        self._update_due()
        self._series -= len(device.slots)
        marks = BirthMarks.of(device)  # before the reset forgets the slots
        device.reset(decoded.payload.timestamp or now_ms)
        device.births += 1
        self.counters.births += 1
        self._count_problems(decoded, topic, now_ms)
        self._birth_metrics(device, topic, decoded.payload, now_ms, out, marks)
        log.info(
            "DBIRTH %s/%s/%s metrics=%d -> %s",
            node.group_id,
            node.edge_node_id,
            device.device_id,
            len(device.slots),
            device.path,
        )
        out.append(self._status(node))

    def _on_data(
        self,
        node: NodeState,
        table: MetricTable,
        topic: str,
        decoded: DecodedPayload,
        now_ms: int,
        out: list[Message],
    ) -> None:
        if self._awaited:  # the session's first DATA: every DBIRTH of it has come
            self._settle(node, now_ms, out)
        if not node.online or not table.online:
            self._data_before_birth(node, topic, now_ms, out, table)
            return
        self._check_seq(node, topic, decoded.payload, now_ms, out)
        if self._count_problems(decoded, topic, now_ms):
            self._request_rebirth(node, now_ms, out)
        payload_ms = decoded.payload.timestamp or now_ms
        slots = table.slots
        for metric in decoded.payload.metrics:
            name = metric.name
            slot = slots.get(name) if name is not None else None
            if slot is None:
                slot = self._late_slot(node, table, topic, metric, now_ms, out)
                if slot is None:
                    continue
            self._republish(table, slot, metric, payload_ms, out)

    def _on_ddeath(
        self,
        node: NodeState,
        device: DeviceState,
        topic: str,
        decoded: DecodedPayload,
        now_ms: int,
        out: list[Message],
    ) -> None:
        if node.online:
            self._check_seq(node, topic, decoded.payload, now_ms, out)
        if device.online or self._awaited.died(node, device):  # awaited since its node's NBIRTH: values still good
            device.online = False
            device.death_ms = now_ms
            self._update_due()
            self.counters.deaths += 1
            self._mark_stale(device, now_ms, out)
            log.info(
                "DDEATH %s/%s/%s: %d metrics now stale",
                node.group_id,
                node.edge_node_id,
                device.device_id,
                len(device.slots),
            )
            out.append(self._status(node))

    def _on_ndeath(self, node: NodeState, topic: str, payload: bytes, now_ms: int, out: list[Message]) -> None:
        try:
            decoded = decode_payload(payload, topic=topic)
        except PayloadDecodeError as exc:
            self._undecodable(node, topic, exc, now_ms)
            return
        bd_seq = bd_seq_of(decoded.payload.metrics)
        if not node.online:
            # nothing to mark or ask: the will that repeats the NDEATH already handled (Sparkplug 3.0 5.x: it MUST
            # be ignored), or the death of a connection after it (stopped while it waited for its primary host, or
            # died with its NBIRTH still in flight): an NBIRTH with that bdSeq is late (``late_births``)
            self._late.died_offline(node, bd_seq)
            return
        if node.bd_seq is not None and bd_seq is not None and bd_seq != node.bd_seq:
            # the will of an older session: this session may be alive, so ask it to prove it
            node.stale_deaths += 1
            node.dead_bd_seq = bd_seq  # or of a newer one whose NBIRTH is still to come (``late_births``)
            self._reject(Reason.bdseq_mismatch, topic, f"NDEATH bdSeq {bd_seq} but birth had {node.bd_seq}", now_ms)
            self._request_rebirth(node, now_ms, out)
            return
        self._end_session(node, bd_seq, now_ms, out)

    def _end_session(self, node: NodeState, bd_seq: int | None, now_ms: int, out: list[Message]) -> None:
        """The NDEATH of ``bd_seq`` ended the node's session: node and devices offline, every last value stale."""
        # not the payload's timestamp: a will carries the time it was registered, at connect
        node.online = False
        node.dead_bd_seq = node.bd_seq if bd_seq is None else bd_seq
        node.death_ms = now_ms
        self.counters.deaths += 1
        self._mark_stale(node, now_ms, out)
        for device in node.devices.values():
            if device.online:
                device.online = False
                self._mark_stale(device, now_ms, out)
        self._settle(node, now_ms, out, status=False)  # those awaited since its NBIRTH go stale with it
        log.info(
            "NDEATH %s/%s bdSeq=%s: node and %d devices now stale",
            node.group_id,
            node.edge_node_id,
            bd_seq,
            len(node.devices),
        )
        out.append(self._status(node))

    # -- pieces ----------------------------------------------------------------------------------

    def _birth_metrics(
        self,
        table: MetricTable,
        topic: str,
        payload: Payload,
        now_ms: int,
        out: list[Message],
        marks: BirthMarks | None,
    ) -> None:
        """Republish a birth's metrics; after the stale marks on the table's last values, if any (``BirthMarks``)."""
        payload_ms = payload.timestamp or now_ms
        for metric in payload.metrics:
            if (
                metric.datatype is DataType.Template
                and isinstance(metric.value, Template)
                and metric.value.is_definition
            ):
                # a Template definition (NBIRTH) describes its instances' members and defaults: no value of its own
                continue
            slot = self._new_slot(table, topic, metric, now_ms)
            if slot is None:
                continue
            republished = metric if marks is None else marks.restamped(metric, payload_ms, now_ms)
            self._republish(table, slot, republished, payload_ms, out)
            if republished is not metric and republished.timestamp is not None:  # stamped after its stale mark
                restamped = table.restamped = table.restamped or {}
                restamped[slot.topic] = (metric.timestamp or payload_ms, republished.timestamp, payload_ms)

    def _new_slot(self, table: MetricTable, topic: str, metric: Metric, now_ms: int) -> MetricSlot | None:
        name, datatype = metric.name, metric.datatype
        if name is None or datatype is None:
            reason = Reason.unknown_datatype if name is not None else Reason.unknown_alias
            self._reject(reason, topic, f"birth metric without {'datatype' if name else 'name'}", now_ms)
            return None
        try:
            uns_topic = metric_topic(table.path, name)
        except TopicError as exc:
            self._reject(Reason.bad_metric_name, topic, f"metric {name!r}: {exc.reason}", now_ms)
            return None
        unit = self._plant.unit_of(table.path, name) or unit_of_metric(metric)
        slot = MetricSlot(topic=uns_topic, datatype=datatype, unit=unit, transient=metric.is_transient)
        if name not in table.slots:
            self._series += 1
        table.born.add(name, metric.alias, slot)
        return slot

    def _late_slot(
        self, node: NodeState, table: MetricTable, topic: str, metric: Metric, now_ms: int, out: list[Message]
    ) -> MetricSlot | None:
        """A named DATA metric its birth did not declare: keep it if it describes itself, ask for rebirth."""
        self._reject(Reason.metric_not_in_birth, topic, f"metric {metric.name!r} not in birth", now_ms)
        self._request_rebirth(node, now_ms, out)
        if metric.datatype is None:
            return None
        refusal = self._bounds.birth_refusal("DATA", len(table.slots) + 1, self._series, len(table.slots))
        if refusal is not None:
            self._reject(refusal[0], topic, f"metric {metric.name!r} not kept: {refusal[1]}", now_ms)
            return None
        return self._new_slot(table, topic, metric, now_ms)

    def _refuse_birth(
        self,
        node: NodeState,
        table: MetricTable,
        kind: str,
        topic: str,
        payload: Payload,
        now_ms: int,
        out: list[Message],
    ) -> bool:
        """Refuse a birth past a bound: the table's session ends (values stale, slots freed), the node degraded."""
        refusal = self._bounds.birth_refusal(kind, len(payload.metrics), self._series, len(table.slots))
        if refusal is None:
            return False
        reason, detail = refusal
        self._reject(reason, topic, f"birth refused: {detail}", now_ms)
        node.degraded[table.source] = f"{reason.value}: {detail}"
        tables = [table, *node.devices.values()] if table is node else [table]
        for ended in tables:  # a device awaited since its node's NBIRTH is offline, its values still good
            if ended.online or (isinstance(ended, DeviceState) and self._awaited.died(node, ended)):
                self._mark_stale(ended, now_ms, out)
            ended.online = False
            self._series -= len(ended.slots)
            ended.born.clear()
        out.append(self._status(node))
        return True

    def _republish(
        self,
        table: MetricTable,
        slot: MetricSlot,
        metric: Metric,
        payload_ms: int,
        out: list[Message],
        quality: Quality | None = None,
    ) -> None:
        ts = metric.timestamp or payload_ms
        # the new live (retained) value: not backfill, and not older than the value held
        live = not metric.is_historical and (slot.last_ms is None or ts >= slot.last_ms)
        if not live and table.restamped is not None and not metric.is_historical:  # cold: after a restamped birth
            ts = after_restamp(table.restamped, slot, ts)
            live = ts > (slot.last_ms or 0)
        value = None if metric.is_null else json_value(metric.value, slot.datatype)
        if live and slot.datatype is DataType.Template:
            value = merged_over_held(slot.last_value, value, metric.value)  # DATA may carry only changed members
        env = build_envelope(
            value=value,
            timestamp_ms=ts,
            quality=quality or quality_of(metric),
            datatype=TYPE_NAMES[slot.datatype],
            unit=slot.unit,
            unbound=not table.bound,
            historical=metric.is_historical,
            source=table.source,
            transient=slot.transient or metric.is_transient,  # the birth's flag holds; a DATA may add it
        )
        if live:
            # the parts, not the envelope dict: the rest is the slot's and the table's (~270 B/metric less)
            slot.last_value, slot.last_ms = env["value"], ts
            out.append(self._message(slot.topic, env, ts, True))
        elif metric.is_historical:
            # backfill must not overwrite the live retained value; the historian stores it in order
            out.append(self._message(slot.topic, env, ts, False))
        else:
            # older than the value held: history and subscribers get it, the retained latest stays
            self.counters.out_of_order += 1
            out.append(self._message(slot.topic, env, ts, False))
        self.counters.metrics_republished += 1

    def _mark_stale(self, table: MetricTable, now_ms: int, out: list[Message]) -> None:
        """Republish each last value ``stale``, stamped as a death is (``stale_marks``)."""
        out += stale_marks(table, now_ms, qos=self._qos, hand_decoded=self.hand_decoded)

    def _settle(self, node: NodeState, now_ms: int, out: list[Message], *, status: bool = True) -> None:
        """The devices ``node``'s NBIRTH awaited and no DBIRTH of its session came for: their values ``stale``.

        Their marks go in the node's status (``stale_ms``, read back at a restart), unless the caller sends it.
        """
        devices = self._awaited.settle(node)
        for device in devices:  # not counted as deaths: no death message came
            device.death_ms = now_ms
            self._mark_stale(device, now_ms, out)
            log.info("%s not born again in its node's session: %d metrics now stale", device.source, len(device.slots))
        if devices:
            self._update_due()
            if status:
                out.append(self._status(node))

    def _message(self, topic: str, env: EnvelopeDict, ts: int, retain: bool) -> Message:
        return republish_message(topic, env, ts, retain, qos=self._qos, hand_decoded=self.hand_decoded)

    def _data_before_birth(
        self, node: NodeState, topic: str, now_ms: int, out: list[Message], table: MetricTable | None = None
    ) -> None:
        refused = node.degraded.get(node.source) or (node.degraded.get(table.source) if table is not None else None)
        if refused is not None:
            # its birth was refused for a bound: a rebirth would bring the same birth again
            self._reject(Reason.data_before_birth, topic, f"its birth was refused ({refused})", now_ms)
            return
        if self._late.waiting(node):  # in flight at its death: the rebirth asked after its late NBIRTH covers it
            self._reject(Reason.data_before_birth, topic, "its session ended with its NDEATH", now_ms)
            return
        self._reject(Reason.data_before_birth, topic, "no birth certificate for this session", now_ms)
        self._request_rebirth(node, now_ms, out)

    def _check_seq(self, node: NodeState, topic: str, payload: Payload, now_ms: int, out: list[Message]) -> None:
        got = payload.seq
        if got is None or node.seq is None:
            node.seq = got
            return
        expected = next_seq(node.seq)
        node.seq = got
        if got != expected:
            self._reject(Reason.seq_gap, topic, f"expected seq {expected}, got {got}", now_ms)
            self._request_rebirth(node, now_ms, out)

    def _count_problems(self, decoded: DecodedPayload, topic: str, now_ms: int) -> bool:
        """Count per-metric decode problems; True if any calls for a rebirth (an unknown alias)."""
        needs_rebirth = False
        for problem in decoded.problems:
            reason = _PROBLEM_REASONS.get(problem.kind, Reason.bad_value)
            label = [repr(problem.name)] if problem.name is not None else []
            if problem.alias is not None:
                label.append(f"alias {problem.alias}")
            self._reject(
                reason,
                topic,
                f"metric {problem.index} ({', '.join(label) or 'no name or alias'}): {problem.reason}",
                now_ms,
            )
            needs_rebirth = needs_rebirth or reason is not Reason.bad_value
        return needs_rebirth

    def tick(self, now_ms: int) -> list[Message]:
        """What is due by now by time alone (``due_ms``): rebirths after late NBIRTHs, DBIRTHs no longer awaited."""
        out: list[Message] = []
        for key in self._late.due(now_ms):
            node = self._nodes[key]
            node.dead_bd_seq = None  # the NBIRTH answering this request is a session alive with that bdSeq
            self._request_rebirth(node, now_ms, out, force=True)
        for key in self._awaited.due(now_ms):
            self._settle(self._nodes[key], now_ms, out)
        self._update_due()
        return out

    def _update_due(self) -> None:
        self.due_ms = min((ms for ms in (self._late.due_ms, self._awaited.due_ms) if ms is not None), default=None)

    def _request_rebirth(self, node: NodeState, now_ms: int, out: list[Message], *, force: bool = False) -> None:
        last = node.last_rebirth_request_ms
        if not force and last is not None and now_ms - last < self._rebirth_interval:
            self.counters.rebirths_suppressed += 1
            return
        node.last_rebirth_request_ms = now_ms
        node.rebirths_requested += 1
        self.counters.rebirths_requested += 1
        topic, payload = rebirth_command(node.group_id, node.edge_node_id, now_ms)
        log.info("requesting rebirth of %s/%s", node.group_id, node.edge_node_id)
        out.append(Message(topic, payload, 0, False))

    def _undecodable(self, node: NodeState, topic: str, exc: PayloadDecodeError, now_ms: int) -> None:
        node.bad_payloads += 1
        node.last_error = str(exc)  # names the topic and the byte offset
        self._reject(Reason.payload_undecodable, topic, exc.reason, now_ms)

    def _reject(self, reason: Reason, topic: str, detail: str, now_ms: int) -> None:
        self.counters.rejected[reason.value] += 1
        self._warn.warning((reason, topic), "%s on %s: %s", reason.value, topic, detail)

    def _status(self, node: NodeState) -> Message:
        self.statuses_made += 1
        topic = f"{self._status_prefix}{node.group_id}/{node.edge_node_id}"
        return Message(topic, orjson.dumps(node.status()), 0, True)

    def seed(self, documents: StatusDocuments, now_ms: int) -> int:
        """Seed the stale marks of the host's retained node status documents, read at start (``uns.host.seeding``)."""
        return seed_marks(
            documents,
            prefix=self._status_prefix,
            directory=self._directory,
            reject=self._reject,
            now_ms=now_ms,
        )

    @property
    def series(self) -> int:
        """Metric slots over every node and device (what ``host.max_series`` bounds)."""
        return self._series

    def health(self) -> dict[str, object]:
        """The host's health document (counters, sessions, unbound devices)."""
        return health_document(self._nodes.values(), series=self._series, unbound=self.unbound, counters=self.counters)
