"""Incoming publishes: the bounded queue ``messages()`` reads, their acknowledgements, when reading pauses.

A full queue pauses socket reads (TCP back-pressure to the broker) only while nothing of ours waits
for an answer: a PUBACK, PUBCOMP or SUBACK arrives on the same socket, so pausing then would wait for
ever on a consumer that waits for that answer. While answers are awaited reading goes on, and
past the bound a QoS 1/2 publish is queued with its acknowledgement held until the consumer takes
it (the broker's in-flight limit stops it sending more), and a QoS 0 publish is dropped and counted.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

from uns.mqtt.codec import Packet, Publish
from uns.mqtt.connection import Connection
from uns.mqtt.types import Message

__all__ = ["Incoming"]

Control = Callable[[Packet, list[bytes]], None]
"""Handles a packet that is not a PUBLISH, appending any answer to write."""


class Incoming:
    """Received messages until the consumer takes them, and the acknowledgements they owe.

    Args:
        max_queued: messages held for the consumer before reading pauses (or, while answers are
            awaited, before QoS 1/2 acknowledgements are held back and QoS 0 publishes dropped).
        manual_ack: QoS 1/2 messages are acknowledged only when the consumer calls ``ack``.
        write: writes an acknowledgement on the current connection (nothing while offline).
    """

    def __init__(self, *, max_queued: int, manual_ack: bool, write: Callable[[bytes], None]) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued {max_queued} must be at least 1")
        self.queue: collections.deque[Message] = collections.deque()
        self.event = asyncio.Event()
        self.unacked: dict[int, Message] = {}  # QoS 1 whose PUBACK waits for ``ack`` or for being taken
        self.in_qos2: dict[int, Message | None] = {}  # None once PUBREC went out
        self.received = 0
        self.read_pauses = 0
        self.dropped = 0
        """QoS 0 publishes dropped because the queue was full while answers were awaited."""
        self._max = max_queued
        self._low_water = max_queued // 2
        self._manual = manual_ack
        self._write = write
        self._paused: Connection | None = None  # whose reading stopped because the queue is full
        self._deferred = 0  # acknowledgements held back past the bound (auto-ack mode)

    def handle(self, packets: list[Packet], conn: Connection, control: Control, awaiting: Callable[[], bool]) -> None:
        """Queue publishes and write the acknowledgements owed in one go; ``control`` gets the rest.

        ``awaiting()`` says whether an answer of ours is outstanding: then a full queue must not pause reads.
        """
        queue = self.queue
        limit = self._max if awaiting() else 0  # 0: no limit in this batch, reading pauses after it
        out: list[bytes] = []
        received = 0
        for p in packets:
            if type(p) is not Publish:
                control(p, out)
                continue
            received += 1
            qos = p.qos
            full = limit and len(queue) >= limit
            if qos == 0:
                if full:
                    self.dropped += 1
                    continue
                queue.append(Message(p.topic, p.payload, 0, p.retain))
                continue
            pid = p.packet_id
            msg = Message(p.topic, p.payload, qos, p.retain, pid)
            hold = self._manual or full
            if qos == 1:
                queue.append(msg)
                if hold:
                    self.unacked[pid] = msg
                    self._deferred += not self._manual
                else:
                    out.append(bytes((0x40, 2, pid >> 8, pid & 0xFF)))
            elif pid not in self.in_qos2:
                queue.append(msg)  # first delivery; a re-sent duplicate is not queued again
                if hold:
                    self.in_qos2[pid] = msg
                    self._deferred += not self._manual
                else:
                    self.in_qos2[pid] = None
                    out.append(bytes((0x50, 2, pid >> 8, pid & 0xFF)))
            elif self.in_qos2[pid] is None:
                out.append(bytes((0x50, 2, pid >> 8, pid & 0xFF)))
        if out and not conn.is_lost:
            conn.write(b"".join(out))
        if received:
            self.received += received
            self.event.set()
        if len(queue) >= self._max and self._paused is None and not awaiting():
            conn.pause_reading()  # the broker now meets TCP back-pressure; nothing is dropped
            self._paused = conn
            self.read_pauses += 1

    def pop(self) -> Message | None:
        """The oldest queued message (None if none); reading resumes below half the bound."""
        queue = self.queue
        if not queue:
            return None
        msg = queue.popleft()
        if self._paused is not None and len(queue) <= self._low_water:
            self.resume()
        if self._deferred and msg.qos and self.ack(msg) and not self._manual:
            self._deferred -= 1
        return msg

    def resume(self) -> None:
        """Read the socket again: an answer is awaited, or the consumer caught up."""
        if self._paused is not None:
            self._paused.resume_reading()
            self._paused = None

    def ack(self, message: Message) -> bool:
        """Acknowledge a QoS 1/2 message held back; False if nothing was owed for it on this session."""
        pid = message.packet_id
        if message.qos == 1 and self.unacked.get(pid) is message:
            del self.unacked[pid]
            self._write(bytes((0x40, 2, pid >> 8, pid & 0xFF)))
            return True
        if message.qos == 2 and self.in_qos2.get(pid) is message:
            self.in_qos2[pid] = None
            self._write(bytes((0x50, 2, pid >> 8, pid & 0xFF)))
            return True
        return False

    def new_session(self) -> None:
        """The broker kept no session: nothing is owed any more (it will not re-send)."""
        self.unacked.clear()
        self.in_qos2.clear()
        self._deferred = 0

    def forget_lost(self) -> None:
        """The connection went away: a paused one that is gone cannot be resumed."""
        if self._paused is not None and self._paused.is_lost:
            self._paused = None
