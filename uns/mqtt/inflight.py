"""Outgoing QoS 1/2 state: packet ids, the bounded in-flight window, re-sends after a reconnect."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Container

from uns.errors import BrokerError
from uns.mqtt.codec import encode_publish_raw

__all__ = ["MAX_INFLIGHT", "Inflight", "Outgoing"]

MAX_INFLIGHT = 65_000
"""Upper bound for ``max_inflight``: leaves packet ids free for SUBSCRIBE/UNSUBSCRIBE."""

# Mosquitto (max_inflight_messages, default 20) silently drops incoming QoS 2 publishes beyond
# that many awaiting PUBREL from one MQTT 3.1.1 client, yet completes their handshake: stay below.
_MAX_INFLIGHT_QOS2 = 20


class Outgoing:
    """A QoS 1/2 publish until its last acknowledgement; its packet id stays reserved until then."""

    __slots__ = ("future", "packet", "qos", "released", "sent", "since")

    def __init__(self, packet: bytes, qos: int, future: asyncio.Future[None]) -> None:
        self.packet = packet
        self.qos = qos
        self.future = future
        self.since = time.monotonic()  # for the age of the oldest unacknowledged publish (health)
        self.sent = False
        self.released = False  # QoS 2: PUBREC came, PUBREL is what to (re-)send


class Inflight:
    """Packet ids and the in-flight window of one client; never reuses an id still in flight.

    Args:
        max_inflight: QoS 1/2 publishes unacknowledged at once (QoS 2 at most 20); ``add`` waits beyond.
    """

    def __init__(self, *, max_inflight: int) -> None:
        if not 1 <= max_inflight <= MAX_INFLIGHT:
            raise ValueError(f"max_inflight {max_inflight} is outside 1..{MAX_INFLIGHT}")
        self._window = asyncio.Semaphore(max_inflight)
        self._window2 = asyncio.Semaphore(min(max_inflight, _MAX_INFLIGHT_QOS2))
        self._entries: dict[int, Outgoing] = {}
        self._reserved: set[int] = set()  # ids of QoS 1 publishes sent once, outside the window (``reserve_pid``)
        self._next_pid = 1
        self.failure: BrokerError | None = None
        """Set by ``fail``: ``add`` raises it until cleared."""

    def __len__(self) -> int:
        return len(self._entries)

    def oldest_age(self, now: float) -> float:
        """Seconds the oldest unacknowledged publish has waited (``now`` from ``time.monotonic``); 0 if none."""
        for entry in self._entries.values():  # insertion order: the first is the oldest
            return max(0.0, now - entry.since)
        return 0.0

    def full(self, qos: int) -> bool:
        """True when ``add`` at this QoS would wait for a free slot."""
        return self._window.locked() or (qos == 2 and self._window2.locked())

    def alloc_pid(self, busy: Container[int] = ()) -> int:
        """A packet id neither in flight nor in ``busy`` (ids of pending SUBSCRIBE/UNSUBSCRIBE)."""
        pid = self._next_pid
        while pid in self._entries or pid in busy or pid in self._reserved:
            pid = pid % 0xFFFF + 1
        self._next_pid = pid % 0xFFFF + 1
        return pid

    async def add(
        self, topic_field: bytes, payload: bytes, qos: int, retain: bool, busy: Container[int] = ()
    ) -> Outgoing:
        """Reserve a slot and a packet id (waiting while the window is full) and encode the PUBLISH."""
        if qos not in (1, 2):
            raise ValueError(f"qos {qos} is not 0, 1 or 2")
        await self._window.acquire()
        if qos == 2:
            try:
                await self._window2.acquire()
            except BaseException:
                self._window.release()
                raise
        if self.failure is not None:
            self._release(qos)
            raise self.failure
        pid = self.alloc_pid(busy)
        future = asyncio.get_running_loop().create_future()
        entry = Outgoing(encode_publish_raw(topic_field, payload, qos, retain, False, pid), qos, future)
        self._entries[pid] = entry
        return entry

    def reserve_pid(self, busy: Container[int] = ()) -> int:
        """A packet id for a QoS 1 publish sent once on this connection, outside the window and never re-sent.

        Held until its PUBACK or ``forget_reserved`` (a new connection, which makes its own such publish).
        """
        pid = self.alloc_pid(busy)
        self._reserved.add(pid)
        return pid

    def forget_reserved(self) -> None:
        """A new connection: the ids ``reserve_pid`` gave on the last one are free (no PUBACK comes for them)."""
        self._reserved.clear()

    def supersede(self, topic_field: bytes) -> None:
        """Complete the QoS 1 publishes to this topic not yet acknowledged without sending them again.

        For a new connection's birth on that topic, which replaces them (``MqttClient``'s ``birth``): an
        old session's copy re-sent after it would undo it.
        """
        gone = [pid for pid, e in self._entries.items() if e.qos == 1 and _topic_field_of(e.packet) == topic_field]
        for pid in gone:
            self._entries[pid].sent = True  # nothing writes it again
            self.complete(pid, 1)

    def complete(self, pid: int, qos: int) -> bool:
        """PUBACK (QoS 1) or PUBCOMP (QoS 2) came: free the slot; False if nothing matched."""
        if qos == 1 and pid in self._reserved:
            self._reserved.discard(pid)
            return True
        entry = self._entries.get(pid)
        if entry is None or entry.qos != qos:
            return False
        del self._entries[pid]
        if not entry.future.done():
            entry.future.set_result(None)
        self._release(qos)
        return True

    def received(self, pid: int) -> None:
        """PUBREC came: from now on PUBREL is what to re-send."""
        entry = self._entries.get(pid)
        if entry is not None:
            entry.released = True

    def resend(self) -> tuple[list[bytes], int]:
        """What to send on a new connection, in the original order, and how many are first sends.

        Publishes sent before go out again with DUP set; QoS 2 ones past PUBREC send PUBREL.
        """
        parts: list[bytes] = []
        first = 0
        for pid, entry in self._entries.items():
            if entry.released:
                parts.append(bytes((0x62, 2, pid >> 8, pid & 0xFF)))
            elif entry.sent:
                parts.append(bytes((entry.packet[0] | 0x08,)) + entry.packet[1:])
            else:
                parts.append(entry.packet)
                first += 1
            entry.sent = True
        return parts, first

    def fail(self, error: BrokerError) -> None:
        """Fail every waiting publish with ``error`` and free their slots."""
        self.failure = error
        for entry in self._entries.values():
            if not entry.future.done():
                entry.future.set_exception(error)
                entry.future.exception()  # retrieved: its waiter may have been cancelled
            self._release(entry.qos)
        self._entries.clear()

    def _release(self, qos: int) -> None:
        self._window.release()
        if qos == 2:
            self._window2.release()


def _topic_field_of(packet: bytes) -> bytes:
    """The topic field (length and name) of an encoded PUBLISH."""
    at = 1
    while packet[at] & 0x80:  # the remaining length, a varint
        at += 1
    at += 1
    return packet[at : at + 2 + (packet[at] << 8 | packet[at + 1])]
