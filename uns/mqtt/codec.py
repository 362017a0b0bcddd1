"""Sans-I/O MQTT 3.1.1 codec: encode client packets, decode a byte stream into packets."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

from uns.errors import BrokerError

__all__ = [
    "MAX_REMAINING_LENGTH",
    "ConnAck",
    "Packet",
    "PacketReader",
    "PingResp",
    "ProtocolError",
    "PubAck",
    "PubComp",
    "PubRec",
    "PubRel",
    "Publish",
    "PublishError",
    "SubAck",
    "UnsubAck",
    "decode_publish",
    "encode",
    "encode_connect",
    "encode_disconnect",
    "encode_pingreq",
    "encode_puback",
    "encode_pubcomp",
    "encode_publish",
    "encode_publish_raw",
    "encode_pubrec",
    "encode_pubrel",
    "encode_remaining_length",
    "encode_subscribe",
    "encode_topic",
    "encode_unsubscribe",
]

MAX_REMAINING_LENGTH = 268_435_455
"""The largest remaining length MQTT can express (four varint bytes)."""

_TYPE_NAMES = (
    "reserved(0)", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
    "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "reserved(15)",
)  # fmt: skip


class ProtocolError(BrokerError):
    """Bytes from the broker are not valid MQTT 3.1.1; ``offset`` counts from the start of the stream."""

    def __init__(self, *, endpoint: str, packet_type: str, offset: int, reason: str) -> None:
        self.packet_type = packet_type
        self.offset = offset
        self.packets: list[Packet] = []
        """Good packets decoded in the same ``feed`` before the malformed one: deliver them."""
        super().__init__(endpoint, f"malformed {packet_type} at byte {offset}: {reason}")


# ---------------------------------------------------------------------------------------------
# Packets the broker sends us
# ---------------------------------------------------------------------------------------------


class Publish(NamedTuple):
    """An incoming (or encodable) PUBLISH; a NamedTuple because it is the hot path."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class ConnAck:
    """The broker's answer to CONNECT; ``return_code`` 0 means accepted."""

    session_present: bool
    return_code: int


@dataclasses.dataclass(frozen=True, slots=True)
class PubAck:
    """QoS 1 acknowledgement."""

    packet_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class PubRec:
    """QoS 2, step 1: publish received."""

    packet_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class PubRel:
    """QoS 2, step 2: publish release."""

    packet_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class PubComp:
    """QoS 2, step 3: publish complete."""

    packet_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class SubAck:
    """Granted QoS per filter, in request order; 0x80 marks a refused filter."""

    packet_id: int
    return_codes: tuple[int, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class UnsubAck:
    """UNSUBSCRIBE acknowledgement."""

    packet_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class PingResp:
    """Answer to PINGREQ."""


Packet = ConnAck | Publish | PubAck | PubRec | PubRel | PubComp | SubAck | UnsubAck | PingResp

# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def encode_remaining_length(n: int) -> bytes:
    """A fixed header's remaining length (0..268,435,455) as MQTT's 1 to 4 byte varint."""
    if n < 0 or n > MAX_REMAINING_LENGTH:
        raise ValueError(f"remaining length {n} is outside 0..{MAX_REMAINING_LENGTH}")
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        if n:
            out.append(digit | 0x80)
        else:
            out.append(digit)
            return bytes(out)


# Fixed headers of QoS 0 PUBLISH for every remaining length below 16384, by retain flag: the
# hot path then costs one list index instead of a varint loop.
_SMALL = 16384
_PUB0_HEADERS = tuple(
    tuple(bytes([0x30 | retain]) + encode_remaining_length(n) for n in range(_SMALL)) for retain in (0, 1)
)


def _field(value: str | bytes, name: str) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    if len(raw) > 0xFFFF:
        raise ValueError(f"{name} is {len(raw)} bytes; MQTT allows at most 65535")
    return len(raw).to_bytes(2, "big") + raw


def _check_packet_id(packet_id: int) -> None:
    if not 1 <= packet_id <= 0xFFFF:
        raise ValueError(f"packet id {packet_id} is outside 1..65535")


def encode_topic(topic: str) -> bytes:
    """The length-prefixed UTF-8 topic field; cache it and pass it to ``encode_publish_raw``."""
    if not topic:
        raise ValueError("topic must not be empty")
    if "+" in topic or "#" in topic:
        raise ValueError(f"topic {topic!r}: wildcards are not allowed in a PUBLISH topic")
    return _field(topic, f"topic {topic[:40]!r}")


def encode_publish_raw(
    topic_field: bytes, payload: bytes, qos: int = 0, retain: bool = False, dup: bool = False, packet_id: int = 0
) -> bytes:
    """PUBLISH from a pre-encoded topic field (``encode_topic``): the fast path, no validation of the topic."""
    if qos == 0:
        n = len(topic_field) + len(payload)
        header = _PUB0_HEADERS[retain][n] if n < _SMALL else bytes([0x30 | retain]) + encode_remaining_length(n)
        return header + topic_field + payload
    if qos not in (1, 2):
        raise ValueError(f"qos {qos} is not 0, 1 or 2")
    _check_packet_id(packet_id)
    n = len(topic_field) + 2 + len(payload)
    first = 0x30 | (dup << 3) | (qos << 1) | retain
    return bytes([first]) + encode_remaining_length(n) + topic_field + packet_id.to_bytes(2, "big") + payload


def encode_publish(
    topic: str, payload: bytes, *, qos: int = 0, retain: bool = False, dup: bool = False, packet_id: int = 0
) -> bytes:
    """PUBLISH ``payload`` on ``topic``; ``packet_id`` (1..65535) is required for QoS 1 and 2."""
    return encode_publish_raw(encode_topic(topic), payload, qos, retain, dup, packet_id)


def encode_connect(
    *,
    client_id: str,
    clean_session: bool = True,
    keepalive_s: int = 60,
    will_topic: str | None = None,
    will_payload: bytes = b"",
    will_qos: int = 0,
    will_retain: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT for MQTT 3.1.1 (protocol level 4)."""
    if not 0 <= keepalive_s <= 0xFFFF:
        raise ValueError(f"keepalive_s {keepalive_s} is outside 0..65535")
    if password is not None and username is None:
        raise ValueError("password given without username: MQTT 3.1.1 requires a username with a password")
    if will_qos not in (0, 1, 2):
        raise ValueError(f"will_qos {will_qos} is not 0, 1 or 2")
    flags = 0x02 if clean_session else 0
    body = [b"\x00\x04MQTT\x04", b"", keepalive_s.to_bytes(2, "big"), _field(client_id, "client_id")]
    if will_topic is not None:
        flags |= 0x04 | (will_qos << 3) | (0x20 if will_retain else 0)
        body += [encode_topic(will_topic), _field(will_payload, "will_payload")]
    if username is not None:
        flags |= 0x80
        body.append(_field(username, "username"))
    if password is not None:
        flags |= 0x40
        body.append(_field(password, "password"))
    body[1] = bytes([flags])
    return _with_header(0x10, b"".join(body))


def _with_header(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_remaining_length(len(body)) + body


def _ack(first: int, packet_id: int) -> bytes:
    _check_packet_id(packet_id)
    return bytes([first, 2, packet_id >> 8, packet_id & 0xFF])


def encode_puback(packet_id: int) -> bytes:
    """PUBACK for an incoming QoS 1 PUBLISH."""
    return _ack(0x40, packet_id)


def encode_pubrec(packet_id: int) -> bytes:
    """PUBREC for an incoming QoS 2 PUBLISH."""
    return _ack(0x50, packet_id)


def encode_pubrel(packet_id: int) -> bytes:
    """PUBREL answering the broker's PUBREC."""
    return _ack(0x62, packet_id)


def encode_pubcomp(packet_id: int) -> bytes:
    """PUBCOMP answering the broker's PUBREL."""
    return _ack(0x70, packet_id)


def encode_subscribe(packet_id: int, filters: Sequence[tuple[str, int]]) -> bytes:
    """SUBSCRIBE to each ``(filter, qos)``."""
    _check_packet_id(packet_id)
    if not filters:
        raise ValueError("SUBSCRIBE needs at least one filter")
    body = [packet_id.to_bytes(2, "big")]
    for topic_filter, qos in filters:
        if not topic_filter:
            raise ValueError("topic filter must not be empty")
        if qos not in (0, 1, 2):
            raise ValueError(f"filter {topic_filter!r}: qos {qos} is not 0, 1 or 2")
        body += [_field(topic_filter, f"filter {topic_filter[:40]!r}"), bytes([qos])]
    return _with_header(0x82, b"".join(body))


def encode_unsubscribe(packet_id: int, filters: Sequence[str]) -> bytes:
    """UNSUBSCRIBE from each filter."""
    _check_packet_id(packet_id)
    if not filters:
        raise ValueError("UNSUBSCRIBE needs at least one filter")
    body = [packet_id.to_bytes(2, "big")] + [_field(f, f"filter {f[:40]!r}") for f in filters]
    return _with_header(0xA2, b"".join(body))


def encode_pingreq() -> bytes:
    """PINGREQ."""
    return b"\xc0\x00"


def encode_disconnect() -> bytes:
    """DISCONNECT: a clean close, so the broker discards the will."""
    return b"\xe0\x00"


def encode(packet: Packet) -> bytes:
    """Any packet ``PacketReader`` decodes, back to bytes (for tests, fakes and benchmarks)."""
    match packet:
        case Publish():
            return encode_publish(
                packet.topic,
                packet.payload,
                qos=packet.qos,
                retain=packet.retain,
                dup=packet.dup,
                packet_id=packet.packet_id,
            )
        case ConnAck():
            return bytes([0x20, 2, int(packet.session_present), packet.return_code])
        case PubAck() | PubRec() | PubRel() | PubComp() | UnsubAck():
            first = {PubAck: 0x40, PubRec: 0x50, PubRel: 0x62, PubComp: 0x70, UnsubAck: 0xB0}[type(packet)]
            return _ack(first, packet.packet_id)
        case SubAck():
            _check_packet_id(packet.packet_id)
            return _with_header(0x90, packet.packet_id.to_bytes(2, "big") + bytes(packet.return_codes))
        case PingResp():
            return b"\xd0\x00"
    raise TypeError(f"cannot encode {packet!r}")  # pragma: no cover  (exhaustive above)


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------

# Expected first byte and exact remaining length of the fixed-size packets.
_FIXED = {
    0x20: (2, "CONNACK"),
    0x40: (2, "PUBACK"),
    0x50: (2, "PUBREC"),
    0x62: (2, "PUBREL"),
    0x70: (2, "PUBCOMP"),
    0xB0: (2, "UNSUBACK"),
    0xD0: (0, "PINGRESP"),
}
_ACKS: dict[int, type[PubAck | PubRec | PubRel | PubComp | UnsubAck]] = {
    0x40: PubAck,
    0x50: PubRec,
    0x62: PubRel,
    0x70: PubComp,
    0xB0: UnsubAck,
}
_SUBACK_CODES = frozenset((0, 1, 2, 0x80))
_PINGRESP = PingResp()


class PublishError(ValueError):
    """A PUBLISH body that is not valid MQTT 3.1.1: ``offset`` into the bytes given, and why."""

    def __init__(self, offset: int, reason: str) -> None:
        self.offset = offset
        self.reason = reason
        super().__init__(f"malformed PUBLISH at byte {offset}: {reason}")


def decode_publish(first: int, buf: bytes, head: int, end: int) -> Publish:
    """The PUBLISH whose fixed header starts with ``first`` and whose body is ``buf[head:end]``.

    The one PUBLISH decoder: the client's :class:`PacketReader` and the embedded broker's reader
    (``uns.broker.handler``) both use it. QoS 3 is the caller's to refuse (a fixed header matter);
    the topic must be UTF-8 here, its other rules (wildcards, U+0000) are the broker's to check.
    Raises :class:`PublishError` with the offset into ``buf``.
    """
    qos = (first >> 1) & 3
    if end - head < 2:
        raise PublishError(head, f"remaining length {end - head} leaves no topic")
    tend = head + 2 + ((buf[head] << 8) | buf[head + 1])
    if qos:
        if tend + 2 > end:
            raise PublishError(head, "topic and packet id overrun the packet")
        pid = (buf[tend] << 8) | buf[tend + 1]
        if not pid:
            raise PublishError(tend, "packet id 0 on a QoS>0 publish")
        body = tend + 2
    else:
        if tend > end:
            raise PublishError(head, "topic length overruns the packet")
        pid = 0
        body = tend
    try:
        topic = buf[head + 2 : tend].decode()
    except UnicodeDecodeError as exc:
        raise PublishError(head + 2 + exc.start, "topic is not UTF-8") from None
    return Publish(topic, buf[body:end], qos, bool(first & 1), bool(first & 8), pid)


class PacketReader:
    """Streaming decoder: ``feed`` bytes as they arrive, get whole packets back; partial ones wait.

    Args:
        max_remaining_length: refuse any packet announcing a larger body (a memory guard).
        endpoint: names the peer in errors.
    """

    def __init__(self, *, max_remaining_length: int = MAX_REMAINING_LENGTH, endpoint: str = "mqtt") -> None:
        self._max = max_remaining_length
        self._endpoint = endpoint
        self._chunks: list[bytes] = []
        self._pending = 0  # bytes held in _chunks
        self._need = 0  # bytes the first held packet needs in all, once its header is known
        self._offset = 0  # stream offset of _chunks[0][0]

    @property
    def buffered(self) -> int:
        """Bytes held back as an incomplete packet."""
        return self._pending

    def _error(self, packet_type: str, offset: int, reason: str) -> ProtocolError:
        return ProtocolError(endpoint=self._endpoint, packet_type=packet_type, offset=offset, reason=reason)

    def feed(self, data: bytes) -> list[Packet]:
        """Decode every complete packet in the bytes so far; raises ``ProtocolError`` on a malformed one.

        After a ``ProtocolError`` the stream cannot be re-synchronised: close the connection.
        The good packets decoded before the bad one are on the error's ``packets``.
        """
        if self._chunks:
            self._chunks.append(data)
            self._pending += len(data)
            if self._pending < self._need:
                return []  # a big packet still arriving: do not re-join on every chunk
            buf = b"".join(self._chunks)
            self._chunks = []
        else:
            buf = data
        out: list[Packet] = []
        pos = 0
        n = len(buf)
        try:
            pos = self._decode(buf, n, out)
        except ProtocolError as exc:
            exc.packets = out
            raise
        self._offset += pos
        if pos < n:
            rest = buf[pos:]
            self._chunks = [rest]
            self._pending = len(rest)
        else:
            self._pending = 0
            self._need = 0
        return out

    def _decode(self, buf: bytes, n: int, out: list[Packet]) -> int:
        pos = 0
        append = out.append
        max_rl = self._max
        while n - pos >= 2:
            first = buf[pos]
            rl = buf[pos + 1]
            head = pos + 2
            if rl & 0x80:  # multi-byte remaining length
                rl &= 0x7F
                shift = 7
                while True:
                    if head >= n:
                        self._need = 0
                        return pos
                    if shift > 21:
                        raise self._error(
                            _TYPE_NAMES[first >> 4], self._offset + head, "remaining length is over 4 bytes"
                        )
                    byte = buf[head]
                    head += 1
                    rl |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
            if rl > max_rl:
                raise self._error(
                    _TYPE_NAMES[first >> 4], self._offset + pos + 1, f"remaining length {rl} exceeds the limit {max_rl}"
                )
            end = head + rl
            if end > n:
                self._need = end - pos
                return pos
            if first >> 4 == 3:
                if first & 0b0110 == 0b0110:
                    raise self._error("PUBLISH", self._offset + pos, "qos bits are 3")
                try:
                    append(decode_publish(first, buf, head, end))
                except PublishError as exc:
                    raise self._error("PUBLISH", self._offset + exc.offset, exc.reason) from None
            elif first in _FIXED:
                size, name = _FIXED[first]
                if rl != size:
                    raise self._error(name, self._offset + pos + 1, f"remaining length {rl}, expected {size}")
                if first == 0xD0:
                    append(_PINGRESP)
                elif first == 0x20:
                    flags = buf[head]
                    if flags & 0xFE:
                        raise self._error("CONNACK", self._offset + head, f"reserved flag bits set (0x{flags:02x})")
                    append(ConnAck(bool(flags), buf[head + 1]))
                else:
                    append(_ACKS[first]((buf[head] << 8) | buf[head + 1]))
            elif first == 0x90:
                if rl < 3:
                    raise self._error("SUBACK", self._offset + pos + 1, f"remaining length {rl}, expected at least 3")
                codes = tuple(buf[head + 2 : end])
                for i, code in enumerate(codes):
                    if code not in _SUBACK_CODES:
                        raise self._error("SUBACK", self._offset + head + 2 + i, f"return code 0x{code:02x} is invalid")
                append(SubAck((buf[head] << 8) | buf[head + 1], codes))
            else:
                name = _TYPE_NAMES[first >> 4]
                reason = f"unexpected first byte 0x{first:02x}"
                if first >> 4 in (1, 8, 10, 12, 14):
                    reason += f": {name} only goes from client to broker"
                raise self._error(name, self._offset + pos, reason)
            pos = end
        self._need = 0
        return pos
