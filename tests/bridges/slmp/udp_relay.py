"""SLMP over UDP for tests: each datagram goes to virtual-plc (TCP only) as one frame, its answer comes back."""

from __future__ import annotations

import asyncio
from typing import Self

__all__ = ["UdpRelay"]

_HEADERS = {b"\xd0\x00": 9, b"\xd4\x00": 13}
"""Response subheader -> header size up to and including the data length (3E, 4E binary)."""


class UdpRelay(asyncio.DatagramProtocol):
    """``async with UdpRelay(tcp_port) as relay:`` listens on ``relay.port`` (UDP, 127.0.0.1)."""

    def __init__(self, tcp_port: int) -> None:
        self._tcp_port = tcp_port
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.port = 0
        self.datagrams = 0

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transport is not None:
            self._transport.close()
        if self._stream is not None:
            self._stream[1].close()

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        self.datagrams += 1
        task = asyncio.create_task(self._relay(data, addr), name="slmp-udp-relay")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay(self, frame: bytes, addr: tuple[str | int, int]) -> None:
        async with self._lock:
            if self._stream is None:
                self._stream = await asyncio.open_connection("127.0.0.1", self._tcp_port)
            reader, writer = self._stream
            writer.write(frame)
            await writer.drain()
            head = await reader.readexactly(2)
            size = _HEADERS[head]
            rest = await reader.readexactly(size - 2)
            body = await reader.readexactly(int.from_bytes(rest[-2:], "little"))
        if self._transport is not None:
            self._transport.sendto(head + rest + body, addr)
