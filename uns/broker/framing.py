"""A reader wrapper that follows MQTT framing: rejects oversize packets early and applies back-pressure."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable

from amqtt.adapters import ReaderAdapter
from amqtt.session import Session

__all__ = ["PUBLISH", "GuardedReader", "Oversize"]

PUBLISH = 3
_MAX_HEADERS = 2 * 65_537 + 16  # room for a topic/will topic, client id, user and password around a payload


class _State(enum.Enum):
    FIRST = 1  # next byte is a fixed header's first byte: a packet boundary
    LENGTH = 2  # inside the remaining-length varint
    BODY = 3


class Oversize:
    """What an oversize packet was: its type, topic (PUBLISH only) and payload size."""

    __slots__ = ("packet_type", "size", "topic")

    def __init__(self, *, packet_type: int, topic: str, size: int) -> None:
        self.packet_type = packet_type
        self.topic = topic
        self.size = size


class GuardedReader(ReaderAdapter):  # type: ignore[misc]  # amqtt ships no type information
    """Wraps amqtt's reader for one connection.

    It tracks packet boundaries in the bytes it hands out. When a PUBLISH fixed header is complete it
    peeks at the topic length to learn the payload size; an oversize packet is reported through
    ``on_oversize`` and the stream then reads as closed, so amqtt ends the connection before reading
    the payload. At each packet boundary it waits while ``gate`` is clear (back-pressure).
    """

    def __init__(
        self,
        inner: ReaderAdapter,
        *,
        max_payload_bytes: int,
        on_oversize: Callable[[GuardedReader, Oversize], None],
    ) -> None:
        self._inner = inner
        self._max_payload = max_payload_bytes
        self._on_oversize = on_oversize
        self._pending = b""
        self._state = _State.FIRST
        self._type = 0
        self._qos = 0
        self._length = 0
        self._multiplier = 1
        self._body_left = 0
        self._closed = False
        self.session: Session | None = None
        """Set by the broker once the CONNECT is read, so reports can name the client."""
        self.gate = asyncio.Event()
        """Set while the session's delivery queue has room; cleared by the broker when it is too full."""
        self.gate.set()
        self.high_water = 0
        """Queued PUBLISHes of the session at which reading pauses until the broker reopens ``gate``; 0 = never."""

    async def read(self, n: int = -1) -> bytes:
        """Read ``n`` bytes for amqtt (``b""`` once closed for an oversize packet)."""
        if self._closed:
            return b""
        if self._state is _State.FIRST:
            session = self.session
            if self.high_water and session is not None and session.delivered_message_queue.qsize() >= self.high_water:
                self.gate.clear()
            if not self.gate.is_set():
                await self.gate.wait()
        data = await self._take(n)
        if self._track(data):
            await self._check_publish()
        return data

    def feed_eof(self) -> None:
        """Pass EOF on."""
        self._inner.feed_eof()

    async def _take(self, n: int) -> bytes:
        if not self._pending:
            return bytes(await self._inner.read(n))
        if n < 0:
            data, self._pending = self._pending + bytes(await self._inner.read(n)), b""
            return data
        data, self._pending = self._pending[:n], self._pending[n:]
        if len(data) < n:
            data += bytes(await self._inner.read(n - len(data)))
        return data

    async def _peek(self, n: int) -> bytes:
        """The next ``n`` bytes, kept for the following reads."""
        while len(self._pending) < n:
            try:
                more = await self._inner.read(n - len(self._pending))
            except asyncio.IncompleteReadError as exc:
                more = exc.partial
            if not more:
                break
            self._pending += more
        return self._pending[:n]

    def _track(self, data: bytes) -> bool:
        """Follow the framing through ``data``; True when a fixed header just ended."""
        header_done = False
        index = 0
        while index < len(data):
            if self._state is _State.FIRST:
                self._type, self._qos = data[index] >> 4, (data[index] >> 1) & 0x3
                self._length, self._multiplier, self._state = 0, 1, _State.LENGTH
                index += 1
            elif self._state is _State.LENGTH:
                byte = data[index]
                self._length += (byte & 0x7F) * self._multiplier
                self._multiplier *= 128
                index += 1
                if not byte & 0x80:
                    header_done = True
                    self._body_left = self._length
                    self._state = _State.BODY if self._length else _State.FIRST
            else:
                step = min(self._body_left, len(data) - index)
                self._body_left -= step
                index += step
                if not self._body_left:
                    self._state = _State.FIRST
        return header_done and self._state is _State.BODY

    async def _check_publish(self) -> None:
        if self._type != PUBLISH:
            if self._length > self._max_payload + _MAX_HEADERS:
                self._reject(Oversize(packet_type=self._type, topic="", size=self._length))
            return
        head = await self._peek(2)
        if len(head) < 2:
            return  # the connection is ending; amqtt will notice
        topic_length = int.from_bytes(head, "big")
        payload = self._length - 2 - topic_length - (2 if self._qos else 0)
        if payload <= self._max_payload:
            return
        topic_bytes = (await self._peek(2 + topic_length))[2:]
        self._reject(Oversize(packet_type=PUBLISH, topic=topic_bytes.decode("utf-8", "replace"), size=payload))

    def _reject(self, oversize: Oversize) -> None:
        self._closed = True
        self._pending = b""
        self._on_oversize(self, oversize)
