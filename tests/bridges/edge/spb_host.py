"""An independent Sparkplug 3.0 host for tests: raw paho-mqtt and the generated protobuf, none of our host code.

It checks every edge-node message against the specification as it arrives (seq continuity, births
before data, aliases, datatypes, bdSeq) and keeps the violations for the test to assert empty.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures import waiting
from uns.sparkplug import sparkplug_b_pb2 as pb

INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64 = 1, 2, 3, 4, 5, 6, 7, 8
FLOAT, DOUBLE, BOOLEAN, STRING, DATETIME, TEXT = 9, 10, 11, 12, 13, 14
_BY_NAME_ONLY = ("bdSeq", "Node Control/Rebirth")
"""NBIRTH metrics that carry no alias: hosts find them by name."""
HEALTH = ("Bridge/Connected", "Bridge/Reading", "Bridge/Degraded", "Bridge/BufferDepth", "Bridge/ReadLatencyMs",
          "Bridge/Errors")  # fmt: skip


def now_ms() -> int:
    return time.time_ns() // 1_000_000


until = functools.partial(waiting.until, within_s=10.0)
"""``tests.fixtures.waiting.until`` with this module's 10 s default (edge sessions reconnect with backoff)."""


def value_of(m: pb.Payload.Metric, datatype: int) -> object:
    if m.is_null:
        return None
    if datatype in (INT8, INT16, INT32):
        bits = {INT8: 8, INT16: 16, INT32: 32}[datatype]
        v = m.int_value & ((1 << bits) - 1)
        return v - (1 << bits) if v >= 1 << (bits - 1) else v
    if datatype in (UINT8, UINT16, UINT32):
        return m.int_value
    if datatype == INT64:
        v = m.long_value
        return v - (1 << 64) if v >= 1 << 63 else v
    if datatype in (UINT64, DATETIME):
        return m.long_value
    if datatype == FLOAT:
        return m.float_value
    if datatype == DOUBLE:
        return m.double_value
    if datatype == BOOLEAN:
        return m.boolean_value
    return m.string_value


def quality_of(m: pb.Payload.Metric) -> int | None:
    for key, value in zip(m.properties.keys, m.properties.values, strict=True):
        if key == "Quality":
            return value.int_value
    return None


def string_property(m: pb.Payload.Metric, name: str) -> str | None:
    for key, value in zip(m.properties.keys, m.properties.values, strict=True):
        if key == name:
            return value.string_value
    return None


@dataclasses.dataclass
class Received:
    """One edge-node message as the host saw it."""

    kind: str
    device: str | None
    payload: pb.Payload
    resolved: list[tuple[str, object, bool, int]]
    """(name, value, is_historical, timestamp) per metric, aliases resolved."""
    node: str = ""
    """The edge node id."""


@dataclasses.dataclass
class _Node:
    bd_seq: int | None = None
    next_seq: int | None = None
    aliases: dict[int, tuple[str | None, str, int]] = dataclasses.field(default_factory=dict)
    born: set[str] = dataclasses.field(default_factory=set)
    online: bool = False


class SpbHost:
    """A primary host on ``spBv1.0/STATE/<host_id>`` that validates one group's edge nodes."""

    def __init__(self, port: int, group: str, host_id: str) -> None:
        self.port, self.group, self.host_id = port, group, host_id
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.violations: list[str] = []
        self.nodes: dict[str, _Node] = {}
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"spb-test-host-{id(self)}", protocol=paho.MQTTv311
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.state_topic = f"spBv1.0/STATE/{host_id}"
        self.connected = threading.Event()
        self.publish_online_on_connect = True
        self.client.will_set(self.state_topic, self._state(False), qos=1, retain=True)

    def _state(self, online: bool) -> bytes:
        return json.dumps({"online": online, "timestamp": now_ms()}).encode()

    def _on_connect(self, client: paho.Client, *_args: object) -> None:
        client.subscribe(f"spBv1.0/{self.group}/#", qos=0)
        if self.publish_online_on_connect:
            client.publish(self.state_topic, self._state(True), qos=1, retain=True)
        self.connected.set()

    async def start(self, *, online: bool = True) -> None:
        self.publish_online_on_connect = online
        self.client.connect_async("127.0.0.1", self.port, keepalive=5)
        self.client.reconnect_delay_set(1, 1)
        self.client.loop_start()
        await until(self.connected.is_set, what="test host connected")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def set_online(self, online: bool, *, legacy: bool = False) -> None:
        self.publish_online_on_connect = online
        body = (b"ONLINE" if online else b"OFFLINE") if legacy else self._state(online)
        self.client.publish(self.state_topic, body, qos=1, retain=True)

    # -- commands ----------------------------------------------------------------------------

    def rebirth(self, node: str) -> None:
        p = pb.Payload(timestamp=now_ms())
        m = p.metrics.add(name="Node Control/Rebirth", timestamp=now_ms(), datatype=BOOLEAN)
        m.boolean_value = True
        self.client.publish(f"spBv1.0/{self.group}/NCMD/{node}", p.SerializeToString(), qos=0)

    def ncmd(self, node: str, metrics: list[pb.Payload.Metric]) -> None:
        p = pb.Payload(timestamp=now_ms())
        p.metrics.extend(metrics)
        self.client.publish(f"spBv1.0/{self.group}/NCMD/{node}", p.SerializeToString(), qos=0)

    def dcmd(self, node: str, device: str, metrics: list[pb.Payload.Metric]) -> None:
        p = pb.Payload(timestamp=now_ms())
        p.metrics.extend(metrics)
        self.client.publish(f"spBv1.0/{self.group}/DCMD/{node}/{device}", p.SerializeToString(), qos=0)

    def alias(self, node: str, device: str | None, name: str) -> int:
        with self.lock:
            for alias, (dev, n, _dt) in self.nodes[node].aliases.items():
                if dev == device and n == name:
                    return alias
        raise KeyError(name)

    # -- queries -------------------------------------------------------------------------------

    def of(self, kind: str, device: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.kind == kind and (device is None or r.device == device)]

    def values(
        self, device: str | None, name: str, *, kinds: tuple[str, ...] = ("DDATA",)
    ) -> list[tuple[object, bool]]:
        with self.lock:
            return [
                (v, h)
                for r in self.received
                if r.kind in kinds and r.device == device
                for n, v, h, _ in r.resolved
                if n == name
            ]

    def count(self, kind: str) -> int:
        return len(self.of(kind))

    # -- validation ----------------------------------------------------------------------------

    def _on_message(self, _client: paho.Client, _userdata: object, msg: paho.MQTTMessage) -> None:
        levels = msg.topic.split("/")
        if len(levels) < 4 or levels[2] in ("NCMD", "DCMD"):
            return
        kind, node_id, device = levels[2], levels[3], levels[4] if len(levels) > 4 else None
        p = pb.Payload()
        p.ParseFromString(bytes(msg.payload))
        with self.lock:
            node = self.nodes.setdefault(node_id, _Node())
            resolved = self._check(kind, node_id, device, node, p)
            self.received.append(Received(kind, device, p, resolved, node_id))

    def _bad(self, text: str) -> None:
        self.violations.append(text)

    def _check_quality(self, where: str, m: pb.Payload.Metric) -> None:
        """tck-id-payloads-propertyset-quality-value-type/-value: Int32, one of 0, 192, 500."""
        for key, value in zip(m.properties.keys, m.properties.values, strict=True):
            if key == "Quality" and (value.type != INT32 or value.int_value not in (0, 192, 500)):
                self._bad(f"{where}: metric {m.name or m.alias!r} Quality type {value.type} value {value.int_value}")

    def _check(
        self, kind: str, node_id: str, device: str | None, node: _Node, p: pb.Payload
    ) -> list[tuple[str, object, bool, int]]:
        where = f"{kind} {node_id}/{device or ''}"
        if kind == "NDEATH":
            names = [m.name for m in p.metrics]
            if names != ["bdSeq"] or p.metrics[0].datatype != INT64:
                self._bad(f"{where}: NDEATH must carry bdSeq Int64 only, got {names}")
            elif node.online and p.metrics[0].long_value == node.bd_seq:
                node.online = False
                node.born.clear()
            return [("bdSeq", p.metrics[0].long_value if p.metrics else None, False, 0)]
        if not p.HasField("seq"):
            self._bad(f"{where}: no seq")
        if kind == "NBIRTH":
            if p.seq != 0:
                self._bad(f"{where}: NBIRTH seq {p.seq}, want 0")
            node.aliases = {}
            node.born.clear()
            node.online = True
            node.next_seq = 1
        else:
            if not node.online:
                self._bad(f"{where}: before NBIRTH (or after NDEATH)")
            elif p.seq != node.next_seq:
                self._bad(f"{where}: seq {p.seq}, want {node.next_seq}")
            node.next_seq = (p.seq + 1) % 256
        if kind in ("NBIRTH", "DBIRTH"):
            if kind == "DBIRTH":  # a device born again (after DDEATH or a rebirth) declares its aliases anew
                node.aliases = {a: v for a, v in node.aliases.items() if v[0] != device}
            out = []
            for m in p.metrics:
                self._check_quality(where, m)
                if not (m.HasField("name") and m.HasField("datatype") and m.HasField("timestamp")):
                    self._bad(f"{where}: metric {m.name!r} lacks name, datatype or timestamp")
                if kind == "NBIRTH" and m.name in _BY_NAME_ONLY:
                    # tck-id-operational-behavior-data-commands-rebirth-name-aliases (and bdSeq, never in DATA)
                    if m.HasField("alias"):
                        self._bad(f"{where}: {m.name} has alias {m.alias}")
                elif not m.HasField("alias"):
                    self._bad(f"{where}: metric {m.name!r} lacks an alias")  # tck-id-payloads-alias-birth-requirement
                elif m.alias in node.aliases:
                    self._bad(f"{where}: alias {m.alias} reused")  # tck-id-payloads-alias-uniqueness
                else:
                    node.aliases[m.alias] = (device, m.name, m.datatype)
                out.append((m.name, value_of(m, m.datatype), m.is_historical, m.timestamp))
            if kind == "NBIRTH":
                names = [m.name for m in p.metrics]
                bd = [m for m in p.metrics if m.name == "bdSeq"]
                if not bd or bd[0].datatype != INT64:
                    self._bad(f"{where}: no Int64 bdSeq")
                else:
                    node.bd_seq = bd[0].long_value
                for wanted in ("Node Control/Rebirth", *HEALTH):
                    if wanted not in names:
                        self._bad(f"{where}: {wanted} missing")
            else:
                node.born.add(device or "")
            return out
        if kind == "DDEATH":
            if device not in node.born:
                self._bad(f"{where}: DDEATH of a device not born")
            node.born.discard(device or "")
            return []
        if kind == "DDATA" and device not in node.born:
            self._bad(f"{where}: DDATA before DBIRTH")
        out = []
        for m in p.metrics:
            self._check_quality(where, m)
            if m.HasField("name") or m.HasField("datatype"):
                self._bad(f"{where}: DATA metric carries a name or datatype")
            known = node.aliases.get(m.alias)
            if known is None or known[0] != device:
                self._bad(f"{where}: alias {m.alias} not born for this device")
                continue
            out.append((known[1] or "", value_of(m, known[2]), m.is_historical, m.timestamp))
        return out
