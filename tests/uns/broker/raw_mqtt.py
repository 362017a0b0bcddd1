"""Raw MQTT 3.1.1 bytes over asyncio streams, for tests that need half-open sockets, partial or bad packets."""

from __future__ import annotations

import asyncio
import socket
import struct

from uns.mqtt.codec import encode_remaining_length
from uns.mqtt.types import BrokerUrl

__all__ = [
    "CONNACK_OK",
    "close_with_reset",
    "connack",
    "connect_packet",
    "login_answer",
    "mqtt_packet",
    "open_raw",
    "read_or_eof",
]

CONNACK_OK = bytes([0x20, 2, 0, 0])


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def connack(code: int) -> bytes:
    """A CONNACK with return ``code`` and Session Present 0."""
    return bytes([0x20, 2, 0, code])


def mqtt_packet(first: int, body: bytes) -> bytes:
    """A packet with fixed header byte ``first`` around ``body``, whatever the body holds."""
    return bytes([first]) + encode_remaining_length(len(body)) + body


def connect_packet(
    client_id: str, *, user: str | None = None, password: str | None = None, keepalive: int = 30
) -> bytes:
    """A clean-session MQTT 3.1.1 CONNECT."""
    flags = 0x02 | (0x80 if user is not None else 0) | (0x40 if password is not None else 0)
    body = _string(b"MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big") + _string(client_id.encode())
    if user is not None:
        body += _string(user.encode())
    if password is not None:
        body += _string(password.encode())
    return mqtt_packet(0x10, body)


async def open_raw(
    url: BrokerUrl, data: bytes = b"", *, local_host: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to ``url`` that has sent ``data`` (from ``local_host`` when given)."""
    local = (local_host, 0) if local_host is not None else None
    reader, writer = await asyncio.open_connection(url.host, url.port, local_addr=local)
    if data:
        writer.write(data)
        await writer.drain()
    return reader, writer


async def read_or_eof(reader: asyncio.StreamReader, n: int, *, within_s: float) -> bytes:
    """Up to ``n`` bytes, fewer at end of stream; fails after ``within_s`` naming what it waited for."""
    try:
        async with asyncio.timeout(within_s):
            data = b""
            while len(data) < n:
                more = await reader.read(n - len(data))
                if not more:
                    break
                data += more
            return data
    except TimeoutError:
        raise AssertionError(f"no answer (nor close) within {within_s} s") from None


async def login_answer(
    url: BrokerUrl,
    user: str,
    password: str,
    *,
    client_id: str | None = None,
    local_host: str | None = None,
    within_s: float = 10,
) -> bytes:
    """The broker's first 4 bytes (a CONNACK, or fewer at a close) to a CONNECT as ``user``; then hang up.

    The client id is ``<user>-c`` unless given.
    """
    packet = connect_packet(client_id or f"{user}-c", user=user, password=password)
    reader, writer = await open_raw(url, packet, local_host=local_host)
    try:
        return await read_or_eof(reader, 4, within_s=within_s)
    finally:
        writer.close()


def close_with_reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN: a connection reset mid-packet."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
