"""Bad bytes both ways: garbage sent to the demo's server, garbage and silence answered to the driver."""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bridges.ethernetip import EnipDevice
from bridges.sim.ethernetip_server import LogixServer, SimTag
from model.bridges.ethernetip import EthernetIpDevice
from uns.errors import DeviceUnreachable

pytestmark = pytest.mark.timeout(30)

_REGISTER_REPLY = struct.pack("<HHII8sI", 0x65, 4, 0x1234, 0, b"\x00" * 8, 0) + struct.pack("<HH", 1, 0)


def _device(port: int) -> EnipDevice:
    config = EthernetIpDevice.model_validate(
        {
            "id": "plc",
            "host": "127.0.0.1",
            "port": port,
            "timeout_s": 0.3,
            "tag_cache": False,
            "tags": [{"name": "t", "address": "T", "type": "DINT"}],
        }
    )
    return EnipDevice(bridge="enip-test", config=config)


@contextlib.asynccontextmanager
async def _answering(answer: Callable[[bytes], Awaitable[bytes | None]]) -> AsyncIterator[int]:
    """A TCP server that registers a session, then answers each message's header with ``answer`` (None: silence)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                header = await reader.readexactly(24)
                await reader.readexactly(struct.unpack_from("<H", header, 2)[0])
                if header[0] == 0x65:  # RegisterSession: echo its context
                    writer.write(_REGISTER_REPLY[:12] + header[12:20] + _REGISTER_REPLY[20:])
                    continue
                reply = await answer(header)
                if reply is not None:
                    writer.write(reply)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def test_garbage_from_clients_ends_only_their_session() -> None:
    rng = random.Random(14)
    async with LogixServer(tags=[SimTag("T", "DINT", 7)]) as server:
        for size in (1, 23, 24, 60, 500):
            reader, writer = await asyncio.open_connection(*server.endpoint)
            junk = bytes(rng.randrange(256) for _ in range(size))
            writer.write(struct.pack("<HH", 0x6F, len(junk)) + b"\x00" * 20 + junk if size > 24 else junk)
            await writer.drain()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            del reader
        device = _device(server.port)
        await device.connect()
        try:
            assert (await device.read("default")).samples[0].value == 7
        finally:
            await device.close()


async def test_a_reply_that_is_not_cip_loses_the_connection_naming_the_offset() -> None:
    async def garbage(header: bytes) -> bytes:
        body = b"\x00" * 6 + struct.pack("<H", 2) + struct.pack("<HH", 0, 0) + struct.pack("<HH", 0xB2, 2) + b"\xcc\x00"
        return struct.pack("<HHII", header[0], len(body), 0x1234, 0) + header[12:20] + b"\x00" * 4 + body

    async with _answering(garbage) as port:
        device = _device(port)
        with pytest.raises(DeviceUnreachable, match="CIP reply undecodable at byte 2: reply of 2 bytes"):
            await device.connect()
        await device.close()


async def test_silence_after_the_session_is_a_timeout_not_a_hang() -> None:
    async def silent(_header: bytes) -> None:
        return None

    async with _answering(silent) as port:
        device = _device(port)
        with pytest.raises(DeviceUnreachable, match=r"no reply within 0.3 s"):
            async with asyncio.timeout(5):
                await device.connect()
        await device.close()
