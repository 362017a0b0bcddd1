"""Error paths of an S7 connection: each one DeviceUnreachable (retry) or DeviceRefused (says what to check).

snap7's Python Server plays the PLC where it can (connection limit, PUT/GET refused by a subclass
answering reads as an S7-1200/1500 does); a small ISO-on-TCP peer written here plays what no
server library does: a CPU that refuses the ISO connection (wrong rack/slot: COTP disconnect) and a
half-open connection (answers the setup, then never a read).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from snap7.server import Server

from tests.bridges.s7.servers import bridge, images, plc, python_server
from uns.errors import DeviceRefused, DeviceUnreachable

_TAGS = [{"name": "W", "address": "DB1.DBW2"}]


class _PutGetDisabled(Server):
    """An S7-1200/1500 with 'Permit access with PUT/GET' off: every read job answered with error 0x8104."""

    def _handle_read_area(self, request: dict[str, Any], client_address: tuple[str, int]) -> bytes:
        response: bytes = self._build_error_response(request, 0x8104)
        return response


class _IsoPeer:
    """A TCP peer speaking just enough ISO-on-TCP: refuse with a COTP DR, or confirm, set up, answer one read,
    then go silent."""

    def __init__(self, *, refuse: bool) -> None:
        self.refuse = refuse
        self.called_tsaps: list[int] = []
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._converse(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        header = await reader.readexactly(4)
        request = await reader.readexactly(struct.unpack(">H", header[2:4])[0] - 4)
        offset = 7
        while offset + 2 <= len(request):
            code, size = request[offset], request[offset + 1]
            if code == 0xC2:
                self.called_tsaps.append(int.from_bytes(request[offset + 2 : offset + 2 + size], "big"))
            offset += 2 + size
        if self.refuse:  # COTP DR, reason 0x00 (not specified), as a CPU answers an unknown TSAP
            reply = bytes([6, 0x80, 0, 1, 0, 1, 0])
            writer.write(struct.pack(">BBH", 3, 0, 4 + len(reply)) + reply)
            await writer.drain()
            return
        reply = bytes([6, 0xD0, 0, 1, 0, 1, 0])
        writer.write(struct.pack(">BBH", 3, 0, 4 + len(reply)) + reply)
        header = await reader.readexactly(4)
        setup = await reader.readexactly(struct.unpack(">H", header[2:4])[0] - 4)
        sequence = setup[7:9]  # after the 3-byte COTP DT header: 32 01 0000 <sequence>
        ack = bytes([0x32, 3, 0, 0]) + sequence + bytes([0, 8, 0, 0, 0, 0, 0xF0, 0, 0, 1, 0, 1, 0, 240])
        writer.write(struct.pack(">BBHBBB", 3, 0, 7 + len(ack), 2, 0xF0, 0x80) + ack)
        await writer.drain()
        # the connect's probe read gets its 2 bytes; then half-open: reads what comes, answers nothing
        header = await reader.readexactly(4)
        probe = await reader.readexactly(struct.unpack(">H", header[2:4])[0] - 4)
        data = bytes([0xFF, 0x04, 0, 16, 0, 0])
        ack = bytes([0x32, 3, 0, 0]) + probe[7:9] + bytes([0, 2, 0, len(data), 0, 0, 0x04, 1]) + data
        writer.write(struct.pack(">BBHBBB", 3, 0, 7 + len(ack), 2, 0xF0, 0x80) + ack)
        await writer.drain()
        await reader.read()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[_IsoPeer]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    await server.wait_closed()


async def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(DeviceUnreachable, match="TCP connect failed"):
        await plc(bridge(port, _TAGS)).connect()


@pytest.mark.parametrize(
    ("device", "tsap", "endpoint"),
    [
        ({"cpu": "S7-300"}, 0x0102, "rack 0 slot 2"),
        ({"cpu": "S7-1500", "slot": 3}, 0x0103, "rack 0 slot 3"),
        ({"cpu": "S7-400", "rack": 1, "connection_type": "OP"}, 0x0223, "rack 1 slot 3"),
        ({"cpu": "LOGO"}, 0x0200, "tsap 0100/0200"),
        ({"local_tsap": 0x1000, "remote_tsap": 0x2001}, 0x2001, "tsap 1000/2001"),
    ],
)
async def test_a_refused_iso_connection_fails_fast_naming_rack_slot_or_tsap(
    device: dict[str, Any], tsap: int, endpoint: str
) -> None:
    async with _IsoPeer(refuse=True).running() as peer:
        config = bridge(
            peer.port, _TAGS if device.get("cpu") != "LOGO" else [{"name": "W", "address": "VW2"}], **device
        )
        with pytest.raises(DeviceRefused) as refused:
            await plc(config).connect()
    assert peer.called_tsaps == [tsap]
    message = str(refused.value)
    assert "COTP disconnect" in message
    assert "check rack/slot" in message
    assert endpoint in message


async def test_the_connection_limit_reached_is_a_refusal_naming_connection_resources() -> None:
    async with python_server(images(), max_clients=1) as port:
        first = plc(bridge(port, _TAGS))
        await first.connect()
        try:
            with pytest.raises(DeviceRefused) as refused:
                await plc(bridge(port, _TAGS)).connect()
        finally:
            await first.close()
    assert "connection resources are in use" in str(refused.value)


async def test_put_get_disabled_is_a_refusal_saying_where_to_enable_it() -> None:
    async with python_server(images(), server=_PutGetDisabled(log=False)) as port:
        with pytest.raises(DeviceRefused) as refused:
            await plc(bridge(port, _TAGS)).connect()
    message = str(refused.value)
    assert "error 0x8104" in message
    assert "Permit access with PUT/GET communication from remote partner" in message


async def test_a_half_open_connection_fails_the_read_within_the_timeout() -> None:
    async with _IsoPeer(refuse=False).running() as peer:
        device = plc(bridge(peer.port, [{"name": "W", "address": "DB1.DBW2"}], timeout_s=0.3))
        await device.connect()
        started = time.monotonic()
        try:
            with pytest.raises(DeviceUnreachable, match=r"no answer within 0.3 s \(half-open connection\?\)"):
                await device.read("default")
        finally:
            await device.close()
    assert time.monotonic() - started < 2.0
