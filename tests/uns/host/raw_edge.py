"""A third-party Sparkplug edge node and a UNS watcher, from raw paho-mqtt and the generated protobuf only."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.waiting import until
from uns.sparkplug import sparkplug_b_pb2 as pb

DOUBLE, INT32, BOOLEAN, INT64, UINT64, STRING, FLOAT, FLOAT_ARRAY = 10, 3, 11, 4, 8, 12, 9, 30


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _paho(client_id: str, *, reconnect: bool = True) -> paho.Client:
    return paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311, reconnect_on_failure=reconnect
    )


def _stop_flag(client: paho.Client) -> None:
    """Set the flag ``loop_stop`` sets, so paho's thread ends at its next turn instead of reconnecting.

    It is paho-mqtt's private ``_thread_terminate`` (2.1, 2.2): should a later paho rename it, nothing is set and
    ``loop_stop`` still ends the thread, only after paho's 1 s select or reconnect wait, as before.
    """
    if hasattr(client, "_thread_terminate"):
        client._thread_terminate = True


async def _connect(client: paho.Client, url: str, keepalive: int = 30) -> None:
    # never block the event loop here: the embedded broker under test runs on it
    hostport = url.removeprefix("mqtt://").rsplit("@", 1)[-1]
    host, port = hostport.rsplit(":", 1)
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    client.connect_async(host, int(port), keepalive=keepalive)
    client.loop_start()
    await until(connected.is_set, what=f"paho connected to {url}")


def metric(
    name: str | None, value: object, datatype: int, *, alias: int | None = None, with_datatype: bool = True
) -> pb.Payload.Metric:
    m = pb.Payload.Metric()
    if name is not None:
        m.name = name
    if alias is not None:
        m.alias = alias
    m.timestamp = now_ms()
    if with_datatype:
        m.datatype = datatype
    if datatype == DOUBLE:
        m.double_value = float(value)  # type: ignore[arg-type]
    elif datatype == FLOAT:
        m.float_value = float(value)  # type: ignore[arg-type]
    elif datatype == FLOAT_ARRAY:
        floats = [float(v) for v in value]  # type: ignore[attr-defined]
        m.bytes_value = struct.pack(f"<{len(floats)}f", *floats)
    elif datatype == BOOLEAN:
        m.boolean_value = bool(value)
    elif datatype in (INT64, UINT64):
        m.long_value = int(value) & 0xFFFFFFFFFFFFFFFF  # type: ignore[call-overload]
    elif datatype == STRING:
        m.string_value = str(value)
    else:
        m.int_value = int(value) & 0xFFFFFFFF  # type: ignore[call-overload]
    return m


def read_at(m: pb.Payload.Metric, read_ms: int) -> pb.Payload.Metric:
    """``m`` stamped as read at ``read_ms`` (``metric`` stamps it now)."""
    m.timestamp = read_ms
    return m


def payload(metrics: list[pb.Payload.Metric], seq: int | None, *, timestamp_ms: int | None = None) -> bytes:
    p = pb.Payload()
    p.timestamp = now_ms() if timestamp_ms is None else timestamp_ms
    if seq is not None:
        p.seq = seq
    p.metrics.extend(metrics)
    return p.SerializeToString()


class RawEdgeNode:
    """Sparkplug 3.0 edge node behaviour written from the spec, not from uns-hub's code."""

    def __init__(
        self,
        url: str,
        group: str,
        node: str,
        bd_seq: int = 0,
        keepalive: int = 30,
        will_ms: int | None = None,
        *,
        reconnect: bool = True,
    ) -> None:
        """``will_ms``: the NDEATH will's timestamp, by default now (a will is stamped when registered, at connect).

        ``reconnect=False``: a node the broker drops stays away (paho's thread ends instead of waiting 1 s to
        reconnect, which ``kill`` would wait out)."""
        self.url, self.group, self.node, self.bd_seq = url, group, node, bd_seq
        self.keepalive = keepalive
        self.seq = 0
        self.commands: list[pb.Payload] = []
        self.client = _paho(f"raw-edge-{group}-{node}", reconnect=reconnect)
        death = payload([metric("bdSeq", bd_seq, INT64)], None, timestamp_ms=will_ms)
        self.client.will_set(self.topic("NDEATH"), death, qos=1, retain=False)
        self.client.on_message = self._on_message

    def topic(self, kind: str, device: str | None = None) -> str:
        base = f"spBv1.0/{self.group}/{kind}/{self.node}"
        return base if device is None else f"{base}/{device}"

    def _on_message(self, _client: paho.Client, _userdata: object, msg: paho.MQTTMessage) -> None:
        p = pb.Payload()
        p.ParseFromString(bytes(msg.payload))
        self.commands.append(p)

    async def start(self) -> None:
        await _connect(self.client, self.url, self.keepalive)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.subscribe(self.topic("NCMD"), qos=1)
        await until(subscribed.is_set, what="SUBACK")

    def next_seq(self) -> int:
        seq = self.seq
        self.seq = (self.seq + 1) % 256
        return seq

    def publish(self, kind: str, data: bytes, device: str | None = None) -> None:
        self.client.publish(self.topic(kind, device), data, qos=0)  # QoS 0: paho's thread writes it in order

    def nbirth(self, metrics: list[pb.Payload.Metric]) -> None:
        self.seq = 0
        self.publish("NBIRTH", payload([metric("bdSeq", self.bd_seq, INT64), *metrics], self.next_seq()))

    def send(
        self, kind: str, metrics: list[pb.Payload.Metric], device: str | None = None, seq: int | None = None
    ) -> None:
        self.publish(kind, payload(metrics, self.next_seq() if seq is None else seq), device)

    def rebirth_requests(self) -> int:
        return sum(1 for p in self.commands for m in p.metrics if m.name == "Node Control/Rebirth" and m.boolean_value)

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT, so the broker publishes the will.

        At once: what was published just before and paho's thread has not written yet is lost with the connection.
        """
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            # loop_stop alone waits out paho's 1 s select: the end of the stream wakes it at once, and the flag
            # loop_stop sets, set before that, keeps paho's thread from reconnecting instead of ending
            _stop_flag(self.client)
            with contextlib.suppress(OSError):  # the broker may have dropped it already (a reset connection)
                sock.shutdown(socket.SHUT_RDWR)
        self.client.loop_stop()
        if sock is not None:
            sock.close()

    def go_silent(self) -> None:
        """Stop talking (no PINGREQ, no DISCONNECT) but keep the TCP connection open: a pulled cable."""
        # loop_stop alone waits out paho's 1 s select: set the flag it sets, then wake the select as paho's own
        # publish does (a byte on its socket pair), so its thread ends at once
        _stop_flag(self.client)
        wake = getattr(self.client, "_sockpairW", None)  # paho-mqtt 2.1-2.2's private socket pair, if still there
        if isinstance(wake, socket.socket):
            with contextlib.suppress(BlockingIOError):  # a full pair: paho's select wakes anyway
                wake.send(b"0")
        self.client.loop_stop()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Watcher:
    """Collects every message under some filters, decoded as JSON when it is JSON."""

    url: str
    filters: list[str]
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    last: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = _paho(f"watcher-{id(self)}")
        self.client.on_message = self._on_message

    def _on_message(self, _client: paho.Client, _userdata: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self.last[msg.topic] = bytes(msg.payload)

    async def start(self) -> None:
        await _connect(self.client, self.url)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.subscribe([(f, 0) for f in self.filters])
        await until(subscribed.is_set, what="SUBACK")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def json(self, topic: str) -> dict[str, object] | None:
        with self.lock:
            raw = self.last.get(topic)
        return None if raw is None else json.loads(raw)


@contextlib.asynccontextmanager
async def edge_and_watcher(
    url: str, group: str, node: str, filters: list[str], *, bd_seq: int = 0
) -> AsyncIterator[tuple[RawEdgeNode, Watcher]]:
    """A connected edge node (not yet born) and a watcher on ``filters``; both stopped on exit."""
    watcher = Watcher(url, filters)
    await watcher.start()
    edge = RawEdgeNode(url, group, node, bd_seq=bd_seq)
    try:
        await edge.start()
        yield edge, watcher
    finally:
        edge.stop()  # after kill() this only stops what is left
        watcher.stop()
