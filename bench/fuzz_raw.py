"""Raw MQTT packets for the fuzz bench: each on its own TCP connection, and what the broker answered.

A connection sends one malformed packet (after a valid CONNECT where the packet needs a session),
then waits a short while for the broker to answer or close. The outcome is ``closed`` (the broker
hung up), ``connack-<code>`` (it refused the CONNECT with that code, or accepted it with 0 and
left the connection open) or ``open`` (it said nothing and kept the socket: the bench closes it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import struct

from uns.mqtt.codec import encode_remaining_length

__all__ = ["RAW_KINDS", "RawOutcomes", "raw_packet", "send_raw"]


def _utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_remaining_length(len(body)) + body


def _connect(client_id: str, *, level: int = 4, name: str = "MQTT", flags: int = 0x02) -> bytes:
    return _packet(0x10, _utf8(name) + bytes([level, flags]) + struct.pack("!H", 30) + _utf8(client_id))


def _garbage(rng: random.Random, cid: str) -> tuple[bytes, bytes]:
    return b"", rng.randbytes(rng.randint(1, 64))


def _truncated_connect(rng: random.Random, cid: str) -> tuple[bytes, bytes]:
    full = _connect(cid)
    return b"", full[: rng.randrange(1, len(full))]


def _bad_remaining_length(rng: random.Random, cid: str) -> tuple[bytes, bytes]:
    return b"", bytes([0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]) + rng.randbytes(4)


def _bad_protocol(rng: random.Random, cid: str) -> tuple[bytes, bytes]:
    return b"", rng.choice([_connect(cid, name="MQTX"), _connect(cid, level=rng.choice([0, 2, 9, 255]))])


def _reserved_flags(rng: random.Random, cid: str) -> tuple[bytes, bytes]:
    return b"", _connect(cid, flags=rng.choice([0x01, 0x03, 0x1C, 0x20]))


def _subscribe_qos3(rng: random.Random, cid: str) -> tuple[bytes, bytes]:
    return _connect(cid), _packet(0x82, struct.pack("!H", 1) + _utf8("fuzz/x") + bytes([3]))


def _subscribe_empty_filter(rng: random.Random, cid: str) -> tuple[bytes, bytes]:
    return _connect(cid), _packet(0x82, struct.pack("!H", 1) + _utf8("") + bytes([0]))


def _publish_wildcard(rng: random.Random, cid: str) -> tuple[bytes, bytes]:
    topic = rng.choice(["fuzz/#", "fuzz/+/x", "fuzz/\x00nul", ""])
    return _connect(cid), _packet(0x30, _utf8(topic) + b"payload")


def _publish_bad_length(rng: random.Random, cid: str) -> tuple[bytes, bytes]:
    body = _utf8("fuzz/len") + b"x"
    return _connect(cid), bytes([0x30]) + encode_remaining_length(len(body) + rng.randint(-3, -1)) + body


def _reserved_type(rng: random.Random, cid: str) -> tuple[bytes, bytes]:
    return _connect(cid), _packet(rng.choice([0x00, 0xF0]), rng.randbytes(4))


def _second_connect(rng: random.Random, cid: str) -> tuple[bytes, bytes]:
    return _connect(cid), _connect(cid)


RAW_KINDS = {
    "garbage": _garbage,
    "truncated_connect": _truncated_connect,
    "bad_remaining_length": _bad_remaining_length,
    "bad_protocol": _bad_protocol,
    "reserved_connect_flags": _reserved_flags,
    "subscribe_qos3": _subscribe_qos3,
    "subscribe_empty_filter": _subscribe_empty_filter,
    "publish_wildcard_or_nul": _publish_wildcard,
    "publish_bad_length": _publish_bad_length,
    "reserved_packet_type": _reserved_type,
    "second_connect": _second_connect,
}
"""Kind → (valid preamble, the malformed packet)."""


def raw_packet(rng: random.Random, n: int) -> tuple[str, bytes, bytes]:
    """(kind, preamble, malformed packet) for the ``n``-th raw input."""
    kind = rng.choice(sorted(RAW_KINDS))
    preamble, packet = RAW_KINDS[kind](rng, f"fz{n}")
    return kind, preamble, packet


class RawOutcomes:
    """What the broker did, per kind and outcome."""

    def __init__(self) -> None:
        self.by_kind: collections.Counter[tuple[str, str]] = collections.Counter()
        self.sent = 0
        self.refused_connections = 0


async def _read_connack(reader: asyncio.StreamReader, wait_s: float) -> bytes:
    async with asyncio.timeout(wait_s):
        return await reader.readexactly(4)


async def send_raw(host: str, port: int, kind: str, preamble: bytes, packet: bytes, outcomes: RawOutcomes) -> None:
    """Open a connection, send ``preamble`` (awaiting its CONNACK) then ``packet``; record the broker's answer."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        outcomes.refused_connections += 1
        return
    outcome = "open"
    try:
        if preamble:
            writer.write(preamble)
            await writer.drain()
            try:
                connack = await _read_connack(reader, 2.0)
            except (TimeoutError, asyncio.IncompleteReadError):
                outcomes.by_kind[(kind, "preamble-refused")] += 1
                outcomes.sent += 1
                return
            if connack[3] != 0:
                outcomes.by_kind[(kind, f"preamble-connack-{connack[3]}")] += 1
                outcomes.sent += 1
                return
        writer.write(packet)
        await writer.drain()
        outcomes.sent += 1
        outcome = await _answer(reader, expect_connack=not preamble)
    except (ConnectionError, OSError):
        outcome = "closed"
    finally:
        outcomes.by_kind[(kind, outcome)] += 1
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def _answer(reader: asyncio.StreamReader, *, expect_connack: bool) -> str:
    try:
        async with asyncio.timeout(1.0):
            data = await reader.read(64)
            if not data:
                return "closed"
            if expect_connack and data[0] == 0x20 and len(data) >= 4:
                rest = await _rest(reader)
                return f"connack-{data[3]}" + ("+closed" if rest == b"" else "")
            return "closed" if await _rest(reader) == b"" else f"answered-0x{data[0]:02x}"
    except TimeoutError:
        return "open"


async def _rest(reader: asyncio.StreamReader) -> bytes | None:
    """b"" when the broker closed within 0.3 s, None when it kept the connection open."""
    try:
        async with asyncio.timeout(0.3):
            while True:
                data = await reader.read(64)
                if not data:
                    return b""
    except TimeoutError:
        return None
