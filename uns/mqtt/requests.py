"""SUBSCRIBE and UNSUBSCRIBE of one client: their packet ids, and each answer awaited or the connection's loss."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from uns.mqtt.codec import SubAck, UnsubAck
from uns.mqtt.connection import Connection
from uns.mqtt.inflight import Inflight

__all__ = ["ConnectionLost", "Requests"]


class ConnectionLost(Exception):
    """The connection went away while a request waited for its answer."""


class Requests:
    """SUBSCRIBE/UNSUBSCRIBE requests waiting for their SUBACK or UNSUBACK.

    Args:
        inflight: gives each request a packet id no publish in flight holds (and keeps its ids from them).
        resume: resumes reading the socket, so an answer is read whatever the received queue holds.
        connected: the client's connection, once there is one (``request`` asks on it, again after a drop).
    """

    def __init__(
        self, *, inflight: Inflight, resume: Callable[[], None], connected: Callable[[], Awaitable[Connection]]
    ) -> None:
        self.pending: dict[int, asyncio.Future[SubAck | UnsubAck]] = {}
        """The answers awaited, by packet id: ids the publishes must not take."""
        self._inflight = inflight
        self._resume = resume
        self._connected = connected

    async def request(self, build: Callable[[int], bytes]) -> SubAck | UnsubAck:
        """Send the packet ``build`` makes for its id and await the answer; sent again if the connection drops."""
        while True:
            conn = await self._connected()
            try:
                return await self.ask(conn, build)
            except ConnectionLost:
                continue

    async def ask(self, conn: Connection, build: Callable[[int], bytes]) -> SubAck | UnsubAck:
        """Send on ``conn`` and await the answer; raises ``ConnectionLost`` if ``conn`` ends first."""
        pid = self._inflight.alloc_pid(self.pending)
        fut: asyncio.Future[SubAck | UnsubAck] = asyncio.get_running_loop().create_future()
        self.pending[pid] = fut
        try:
            conn.write(build(pid))
            self._resume()  # the answer must be read, whatever the queue holds
            either: list[asyncio.Future[SubAck | UnsubAck] | asyncio.Future[str]] = [fut, conn.lost]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not fut.done():
                raise ConnectionLost(conn.lost.result())
            return fut.result()
        finally:
            self.pending.pop(pid, None)
            fut.cancel()

    def answer(self, ack: SubAck | UnsubAck) -> None:
        """A SUBACK or UNSUBACK came: wake its request (one nobody awaits any more is ignored)."""
        fut = self.pending.get(ack.packet_id)
        if fut is not None and not fut.done():
            fut.set_result(ack)
