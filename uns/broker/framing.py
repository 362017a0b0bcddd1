"""A reader wrapper that follows MQTT framing: whole packets for the broker, oversize rejected early, back-pressure."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter
from amqtt.session import Session

__all__ = ["MAX_HEADERS", "PUBLISH", "GuardedReader", "MalformedLength", "Oversize"]

PUBLISH = 3
MAX_HEADERS = 2 * 65_537 + 16  # room for a topic/will topic, client id, user and password around a payload
_CHUNK = 65_536  # bytes asked of the socket at once: many small packets per await


class MalformedLength(ValueError):
    """A fixed header's remaining length runs over four bytes (MQTT 3.1.1, 2.2.3)."""


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
    the payload. It counts the QoS 0/1 PUBLISHes it hands out; the broker counts those it has
    handled in ``handled``. At a packet boundary, with ``high_water`` or more not yet handled, it
    stops reading until the broker sets ``gate`` again: back-pressure to the client's socket.
    (QoS 2 is left out: its PUBREL must still be read, and the client's in-flight window bounds it.)

    amqtt reads the CONNECT through :meth:`read`; the broker's reader loop then takes whole packets
    with :meth:`read_packet`. Both serve from one buffer filled up to 64 KiB at a time from a TCP
    stream, so a burst of small PUBLISHes costs one await of the socket, not several per packet.
    """

    def __init__(
        self,
        inner: ReaderAdapter,
        *,
        max_payload_bytes: int,
        on_oversize: Callable[[GuardedReader, Oversize], None],
        connect_timeout_s: float | None = None,
    ) -> None:
        self._inner = inner
        self._max_payload = max_payload_bytes
        self._on_oversize = on_oversize
        self._stream: asyncio.StreamReader | None = inner._reader if isinstance(inner, StreamReaderAdapter) else None
        self._buf = b""  # unread bytes are self._buf[self._pos:]
        self._pos = 0
        self._state = _State.FIRST
        self._type = 0
        self._qos = 0
        self._length = 0
        self._multiplier = 1
        self._body_left = 0
        self._closed = False
        self._connect_timeout_s = connect_timeout_s
        self.session: Session | None = None
        """Set by the broker once the CONNECT is read, so reports can name the client."""
        self.gate = asyncio.Event()
        """Set while reading may go on; the broker sets it again once its backlog has drained."""
        self.gate.set()
        self.high_water = 0
        """Unhandled QoS 0/1 PUBLISHes at which reading pauses; 0 = never."""
        self.low_water = 0
        """Unhandled QoS 0/1 PUBLISHes at or below which a paused reading goes on (:meth:`count_handled`)."""
        self.read_count = 0
        """QoS 0/1 PUBLISH packets handed to amqtt."""
        self.handled = 0
        """QoS 0/1 PUBLISH messages the broker has handled (:meth:`count_handled`)."""
        self.protocol = "3.1.1"
        """The client's MQTT version, set from its CONNECT (``3.1`` once rewritten, see :mod:`uns.broker.preface`)."""

    async def read(self, n: int = -1) -> bytes:
        """Read ``n`` bytes for amqtt (``b""`` once closed for an oversize packet)."""
        if self._closed:
            return b""
        if self._state is _State.FIRST:
            if self.high_water and self.backlog >= self.high_water:
                self.gate.clear()
            if not self.gate.is_set():
                await self.gate.wait()
            try:
                data = await self._take(n)
            except (asyncio.IncompleteReadError, ConnectionError):
                await self._let_tasks_run()
                raise
            if not data:
                await self._let_tasks_run()
        else:
            data = await self._take(n)
        if self._track(data):
            await self._check_publish()
        return data

    def count_handled(self) -> None:
        """One QoS 0/1 PUBLISH read is handled (routed, or ignored); the gate opens again once the backlog drained."""
        self.handled += 1
        if not self.gate.is_set() and self.backlog <= self.low_water:
            self.gate.set()  # read the client's socket again

    @property
    def backlog(self) -> int:
        """QoS 0/1 PUBLISHes read but not yet handled by the broker."""
        return self.read_count - self.handled

    def feed_eof(self) -> None:
        """Pass EOF on."""
        self._inner.feed_eof()

    @staticmethod
    async def _let_tasks_run() -> None:
        # amqtt's reader cancels its per-packet tasks once the stream ends; buffered PUBLISHes can
        # be read without a pause, so let their tasks queue them before amqtt sees the end
        await asyncio.sleep(0)

    async def _take(self, n: int) -> bytes:
        if self.session is None and self._connect_timeout_s is not None:
            try:  # before CONNECT is complete: a silent client must not hold a connection forever
                async with asyncio.timeout(self._connect_timeout_s):
                    return await self._take_now(n)
            except TimeoutError:
                raise asyncio.IncompleteReadError(b"", n) from None
        return await self._take_now(n)

    async def _take_now(self, n: int) -> bytes:
        if n < 0:
            data = self._buf[self._pos :] + bytes(await self._inner.read(n))
            self._buf, self._pos = b"", 0
            return data
        if len(self._buf) - self._pos < n:
            await self._fill(n)
        start = self._pos
        data = self._buf[start : start + n]
        self._pos = start + len(data)
        return data

    async def _fill(self, n: int) -> None:
        """Buffer at least ``n`` unread bytes (fewer only at the end of the stream)."""
        chunks = [self._buf[self._pos :]]
        have = len(chunks[0])
        while have < n:
            more = await self._more(n - have)
            if not more:
                break
            chunks.append(more)
            have += len(more)
        self._buf, self._pos = b"".join(chunks), 0

    async def _more(self, wanted: int) -> bytes:
        """Some more bytes of the stream, ``b""`` at its end: what the socket has (TCP), else exactly ``wanted``."""
        if self._stream is not None:
            return await self._stream.read(max(wanted, _CHUNK))
        try:
            return bytes(await self._inner.read(wanted))
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    async def peek(self, n: int) -> bytes:
        """The first ``n`` bytes not yet read, kept for the following reads (fewer at end of stream)."""
        if self._closed:
            return b""  # rejected as oversize: what follows is never read
        return await self._peek(n)

    def rewrite_start(self, length: int, replacement: bytes) -> None:
        """Replace the first ``length`` unread bytes (peeked before) by ``replacement``; before any read only."""
        if self._state is not _State.FIRST or len(self._buf) - self._pos < length:
            raise ValueError("rewrite_start: only peeked bytes at a packet boundary can be rewritten")
        self._buf, self._pos = replacement + self._buf[self._pos + length :], 0

    async def _peek(self, n: int) -> bytes:
        """The next ``n`` bytes, kept for the following reads."""
        if len(self._buf) - self._pos < n:
            await self._fill(n)
        return self._buf[self._pos : self._pos + n]

    def buffered_packet(self) -> tuple[int, bytes] | None:
        """The next whole packet when it is already buffered and no check of :meth:`read_packet` must wait; else None.

        :meth:`read_packet` without its awaits (five coroutines a packet): a burst of small PUBLISHes
        arrives in one 64 KiB read and each of them is then taken here. None sends the caller to
        :meth:`read_packet`, which handles every other case: a packet not yet whole, the end of the
        stream, a closed gate, an oversize or malformed length.
        """
        buf, pos = self._buf, self._pos
        end = len(buf)
        if end - pos < 2 or self._closed or not self.gate.is_set():
            return None
        if self.high_water and self.read_count - self.handled >= self.high_water:
            return None
        first, byte = buf[pos], buf[pos + 1]
        length, shift, index = byte & 0x7F, 7, pos + 2
        while byte & 0x80:
            if shift > 21 or index >= end:
                return None
            byte = buf[index]
            length |= (byte & 0x7F) << shift
            shift += 7
            index += 1
        if length > self._max_payload or end - index < length:
            return None
        packet_type, qos = first >> 4, (first >> 1) & 0x3
        self._type, self._qos, self._length = packet_type, qos, length
        if packet_type == PUBLISH and qos < 2:
            self.read_count += 1
        self._pos = index + length
        return first, buf[index : index + length]

    async def read_packet(self) -> tuple[int, bytes] | None:
        """The next whole packet at a packet boundary: its first byte and its body (after the fixed header).

        None at the end of the stream (also inside a packet: the connection is ending) and once an
        oversize packet was rejected. Raises :class:`MalformedLength` for a remaining length over four bytes.
        """
        if self._closed:
            return None
        if self.high_water and self.backlog >= self.high_water:
            self.gate.clear()
        if not self.gate.is_set():
            await self.gate.wait()
        try:
            head = await self._take(2)
        except (asyncio.IncompleteReadError, ConnectionError):
            head = b""
        if len(head) < 2:
            await self._let_tasks_run()
            return None
        first, byte = head[0], head[1]
        length, shift = byte & 0x7F, 7
        while byte & 0x80:
            if shift > 21:
                raise MalformedLength(f"remaining length of packet type {first >> 4} runs over four bytes")
            more = await self._take(1)
            if not more:
                return None
            byte = more[0]
            length |= (byte & 0x7F) << shift
            shift += 7
        self._type, self._qos, self._length = first >> 4, (first >> 1) & 0x3, length
        if self._type == PUBLISH and self._qos < 2:
            self.read_count += 1
        # smaller packets cannot be oversize: no peek on the hot path
        if length > self._max_payload and await self._check_publish():
            return None
        if not length:
            return first, b""
        try:
            body = await self._take(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        return (first, body) if len(body) == length else None

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
                    if self._type == PUBLISH and self._qos < 2:
                        self.read_count += 1
                    self._body_left = self._length
                    self._state = _State.BODY if self._length else _State.FIRST
            else:
                step = min(self._body_left, len(data) - index)
                self._body_left -= step
                index += step
                if not self._body_left:
                    self._state = _State.FIRST
        return header_done and self._state is _State.BODY

    async def _check_publish(self) -> bool:
        """Reject the packet whose fixed header was just read if it is oversize; True when rejected."""
        if self._type != PUBLISH:
            if self._length > self._max_payload + MAX_HEADERS:
                self._reject(Oversize(packet_type=self._type, topic="", size=self._length))
                return True
            return False
        head = await self._peek(2)
        if len(head) < 2:
            return False  # the connection is ending; amqtt will notice
        topic_length = int.from_bytes(head, "big")
        payload = self._length - 2 - topic_length - (2 if self._qos else 0)
        if payload <= self._max_payload:
            return False
        topic_bytes = (await self._peek(2 + topic_length))[2:]
        self._reject(Oversize(packet_type=PUBLISH, topic=topic_bytes.decode("utf-8", "replace"), size=payload))
        return True

    def _reject(self, oversize: Oversize) -> None:
        self._closed = True
        self._buf, self._pos = b"", 0
        self._on_oversize(self, oversize)
