"""The start of a CONNECT, read before amqtt parses it: MQTT 3.1 let in, MQTT 5 and unknown protocols refused at once.

amqtt 0.12.1 reads a whole CONNECT as MQTT 3.1.1 before it looks at the protocol: an MQTT 5
CONNECT's property length is read as the client id length and the broker waits for bytes that
never come (10 s, until the CONNECT deadline); an MQTT 3.1 (``MQIsdp``, level 3) CONNECT is
dropped without CONNACK. Here the protocol name and level are peeked as soon as they arrive:

- ``MQTT`` level 4 (3.1.1): amqtt goes on;
- ``MQIsdp`` level 3 (3.1, same wire format as 3.1.1 but the name, level and a client id of 1 to 23
  bytes): the two header fields are rewritten to 3.1.1's before amqtt reads them; an empty or
  longer client id is refused with CONNACK 2 (identifier rejected), as MQTT 3.1 says;
- ``MQTT`` or ``MQIsdp`` with another level (MQTT 5 is level 5): CONNACK 1 (unacceptable protocol
  version, MQTT-3.1.2-2) at once, then close;
- any other protocol name: close without CONNACK (MQTT-3.1.2-1), as Mosquitto does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from uns.mqtt.codec import encode_remaining_length

__all__ = ["MAX_CLIENT_ID_31", "Verdict", "check_preface", "client_id_of", "connack"]

MAX_CLIENT_ID_31 = 23
"""MQTT 3.1: a client identifier is 1 to 23 bytes."""

_CONNECT = 0x10
_LEVEL_311 = 4
_LEVEL_31 = 3
_LEVEL_5 = 5
_NAME_31 = b"MQIsdp"
_NAME_311 = b"MQTT"
_UNACCEPTABLE_PROTOCOL = 0x01
_IDENTIFIER_REJECTED = 0x02

Peek = Callable[[int], Awaitable[bytes]]
"""Returns the next ``n`` bytes without consuming them (fewer only at end of stream)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What to do with a connection after its CONNECT's protocol name and level were read."""

    protocol: str
    """``3.1.1``, ``3.1``, ``5`` or what the client sent (``MQTT level 6``, ``'XYZ'``)."""
    refuse: bool = False
    """Close the connection; amqtt never sees it."""
    code: int | None = None
    """CONNACK return code to send before closing (None: close without CONNACK)."""
    header_length: int = 0
    """Bytes of the fixed header (type byte and remaining length)."""
    remaining: int = 0
    """The CONNECT's remaining length."""
    rewrite: tuple[int, bytes] | None = None
    """(bytes to replace at the start of the stream, replacement): a 3.1 CONNECT made 3.1.1."""
    reason: str = ""


def connack(code: int) -> bytes:
    """An MQTT 3.1/3.1.1 CONNACK refusing with ``code`` (Session Present 0)."""
    return bytes([0x20, 2, 0, code])


async def check_preface(peek: Peek) -> Verdict | None:
    """Read a CONNECT's protocol name and level (and for 3.1 its client id length); None: leave it to amqtt.

    Waits only for bytes every CONNECT has, so a refusal goes out as soon as the level is read.
    """
    head = await peek(2)
    if len(head) < 2 or head[0] != _CONNECT:
        return None  # not a CONNECT, or the connection ended: amqtt closes it
    remaining, multiplier, index = 0, 1, 1
    while True:
        data = await peek(index + 1)
        if len(data) <= index or index > 4:
            return None
        remaining += (data[index] & 0x7F) * multiplier
        multiplier *= 128
        index += 1
        if not data[index - 1] & 0x80:
            break
    start = index  # variable header: protocol name (2-byte length + bytes), level
    data = await peek(start + 2)
    if len(data) < start + 2:
        return None
    name_length = int.from_bytes(data[start : start + 2], "big")
    if name_length > len(_NAME_31) or name_length + 3 > remaining:
        return Verdict(protocol=f"name of {name_length} bytes", refuse=True, reason="not an MQTT protocol name")
    level_at = start + 2 + name_length
    data = await peek(level_at + 1)
    if len(data) < level_at + 1:
        return None
    name, level = data[start + 2 : level_at], data[level_at]
    if name == _NAME_311 and level == _LEVEL_311:
        return None
    if name not in (_NAME_311, _NAME_31):
        return Verdict(
            protocol=repr(name.decode("latin-1")),
            refuse=True,
            reason="unknown protocol name",
            header_length=start,
            remaining=remaining,
        )
    if name == _NAME_31 and level == _LEVEL_31:
        return await _check_31(peek, level_at, remaining, start)
    protocol = "5" if name == _NAME_311 and level == _LEVEL_5 else f"{name.decode()} level {level}"
    return Verdict(
        protocol=protocol,
        refuse=True,
        code=_UNACCEPTABLE_PROTOCOL,
        reason="unsupported protocol version",
        header_length=start,
        remaining=remaining,
    )


async def _check_31(peek: Peek, level_at: int, remaining: int, start: int) -> Verdict:
    id_at = level_at + 1 + 1 + 2  # level, connect flags, keep-alive
    data = await peek(id_at + 2)
    if len(data) < id_at + 2:
        return Verdict(
            protocol="3.1",
            refuse=True,
            reason="CONNECT ended before its client id",
            header_length=start,
            remaining=remaining,
        )
    id_length = int.from_bytes(data[id_at : id_at + 2], "big")
    if not 1 <= id_length <= MAX_CLIENT_ID_31:
        return Verdict(
            protocol="3.1",
            refuse=True,
            code=_IDENTIFIER_REJECTED,
            reason=f"MQTT 3.1 client ids are 1 to {MAX_CLIENT_ID_31} bytes (got {id_length})",
            header_length=start,
            remaining=remaining,
        )
    # same packet, 3.1.1's name and level: 2 bytes shorter
    replacement = (
        bytes([_CONNECT]) + encode_remaining_length(remaining - 2) + b"\x00\x04" + _NAME_311 + bytes([_LEVEL_311])
    )
    return Verdict(protocol="3.1", rewrite=(level_at + 1, replacement), header_length=start, remaining=remaining)


def client_id_of(packet: bytes, verdict: Verdict) -> str | None:
    """The client id in a whole CONNECT ``packet`` (3.1, 3.1.1 or 5), for logs; None if it cannot be read."""
    at = verdict.header_length
    if len(packet) < at + 2:
        return None
    at += 2 + int.from_bytes(packet[at : at + 2], "big")  # protocol name
    if len(packet) < at + 4:
        return None
    level = packet[at]
    at += 4  # level, flags, keep-alive
    if level == _LEVEL_5:  # properties: a varint length, then that many bytes
        length, multiplier = 0, 1
        while at < len(packet):
            byte = packet[at]
            at += 1
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            if not byte & 0x80:
                break
        at += length
    if len(packet) < at + 2:
        return None
    end = at + 2 + int.from_bytes(packet[at : at + 2], "big")
    if len(packet) < end:
        return None
    return packet[at + 2 : end].decode("utf-8", "replace")
