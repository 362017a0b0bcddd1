"""uns.mqtt.connection on each event loop a ``uns`` command may run (settings ``event_loop``)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from uns.mqtt.connection import Connection

Runner = Callable[[Coroutine[Any, Any, None]], None]


def _uvloop_run(work: Coroutine[Any, Any, None]) -> None:
    uvloop = pytest.importorskip("uvloop", reason="uvloop is a dependency on every platform but Windows")
    uvloop.run(work)


async def _reset_after_accept() -> None:
    """A peer that resets the connection at once; a write to it afterwards must not raise."""

    async def reset(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST, not FIN

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    try:
        port = int(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: Connection(endpoint="test", on_packets=lambda _packets, _conn: None), "127.0.0.1", port
        )
        async with asyncio.timeout(5):
            await conn.lost
        conn.write(b"\xc0\x00")  # a PINGREQ after the loss: dropped, as the supervisor is reconnecting
    finally:
        server.close()


@pytest.mark.parametrize("run", [asyncio.run, _uvloop_run], ids=["asyncio", "uvloop"])
def test_a_write_after_the_connection_is_lost_is_dropped_on_either_loop(run: Runner) -> None:
    run(_reset_after_accept())
