"""One EtherNet/IP session on asyncio: register, Forward Open (large, then classic, then unconnected), requests.

The client sends one request at a time (a Logix controller answers in order anyway, and PlcSource
never overlaps calls to one device) and raises ``CipLost`` for anything that means the session is
gone, ``CipRefused`` when the controller answers a session or connection request with a refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import struct

from bridges.ethernetip.cip import UNCONNECTED_SIZE, CipDecodeError, Reply, decode_reply, encode_request, status_text
from bridges.ethernetip.encap import (
    CONNECTED_ADDRESS,
    CONNECTED_DATA,
    CONNECTION_MANAGER,
    FORWARD_CLOSE,
    FORWARD_OPEN,
    HEADER,
    LARGE_FORWARD_OPEN,
    MESSAGE_ROUTER,
    NULL_ADDRESS,
    REGISTER_SESSION,
    SEND_RR_DATA,
    SEND_UNIT_DATA,
    UNCONNECTED_DATA,
    UNCONNECTED_SEND,
    UNREGISTER_SESSION,
    Encapsulation,
    ForwardOpen,
    decode_cpf,
    encode_cpf,
    encode_forward_close,
    encode_forward_open,
    encode_unconnected_send,
)

__all__ = ["CipClient", "CipLost", "CipRefused"]

log = logging.getLogger(__name__)

_VENDOR = 0x1337
"""Our originator vendor id in Forward Open (any value unique with the serial)."""
_MULTIPLIER = 32
"""Connection timeout multiplier code 3 (x32) in encap.encode_forward_open: idle timeout = RPI x 32."""
_serials = itertools.count(int.from_bytes(os.urandom(2), "little"))

# Forward Open answers that mean "this kind of connection is not supported here": try the next kind.
_NOT_SUPPORTED = {0x08, 0x14}
_SIZE_REFUSED = {0x0108, 0x0109, 0x0111}
_LIMIT = {0x0100: "the connection is in use", 0x0113: "the controller is out of connections", 0x0106: "ownership"}


class CipLost(ConnectionError):
    """The TCP session failed, timed out or answered nonsense: reconnect."""


class CipRefused(Exception):
    """The controller answered and said no; ``hint`` says what to check."""

    def __init__(self, what: str, status: int, extended: tuple[int, ...], hint: str, *, cip: bool = True) -> None:
        self.status = status
        self.extended = extended
        self.hint = hint
        said = status_text(status, extended) if cip else f"encapsulation status 0x{status:04X}"
        super().__init__(f"{what} refused: {said}; {hint}")


def _refusal_hint(status: int, extended: tuple[int, ...], route: bytes) -> str:
    ext = extended[0] if extended else None
    if status == 0x01 and ext in _LIMIT:
        return (
            f"connection limit: {_LIMIT[ext]}; close other clients (HMIs, historians, Studio 5000) or raise the "
            "module's connection budget, or set connected: false"
        )
    return (
        f"wrong route or slot: check 'route' (now {_hops(route)}: [1, N] is the backplane slot N of the controller; "
        "none for Micro800 with family: micro800) and that the controller is in that slot"
    )


def _hops(route: bytes) -> str:
    return " ".join(f"[{route[i]}, {route[i + 1]}]" for i in range(0, len(route), 2)) or "none"


class CipClient:
    """An EtherNet/IP session with one controller.

    Args:
        host, port: The controller's (or its Ethernet module's) address.
        route: Port segments from that module to the controller (``b""`` for none).
        connected: Try Forward Open; on "not supported" answers fall back to unconnected messaging.
        connection_size: Bytes asked for in Large Forward Open.
        timeout_s: One request's deadline.
        idle_s: How long the connection may go without a request before the controller closes it
            (RPI x 32, the timeout multiplier we send): more than the slowest poll interval.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        route: bytes,
        connected: bool,
        connection_size: int,
        timeout_s: float,
        idle_s: float = 64.0,
    ) -> None:
        self.host = host
        self.port = port
        self.route = route
        self._want_connected = connected
        self._want_size = connection_size
        self._timeout_s = timeout_s
        self._rpi_us = max(2_000_000, min(int(idle_s / _MULTIPLIER * 1_000_000), 0xFFFFFFFF))
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._session = 0
        self._connection: ForwardOpen | None = None
        self._sequence = 0
        self.connection_size = UNCONNECTED_SIZE
        self.mode = "closed"
        """``large connected``, ``connected``, ``unconnected`` or ``closed``: for logs and health."""

    async def open(self) -> None:
        """TCP connect, RegisterSession, then the best connection the controller grants."""
        try:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise CipLost(f"TCP connect failed: {exc}") from exc
        reply = await self._exchange(Encapsulation(REGISTER_SESSION, data=struct.pack("<HH", 1, 0)))
        if reply.status != 0:
            raise CipRefused("RegisterSession", reply.status, (), "the device does not take EtherNet/IP sessions")
        self._session = reply.session
        self.mode, self.connection_size = "unconnected", UNCONNECTED_SIZE
        if self._want_connected:
            await self._forward_open()

    async def _forward_open(self) -> None:
        path = self.route + MESSAGE_ROUTER
        attempts = [(True, self._want_size), (False, UNCONNECTED_SIZE)] if self._want_size > 511 else []
        attempts = attempts or [(False, self._want_size)]
        for large, size in attempts:
            fo = ForwardOpen(
                o_t_id=0,
                t_o_id=int.from_bytes(os.urandom(4), "little"),
                serial=next(_serials) & 0xFFFF,
                vendor=_VENDOR,
                originator_serial=os.getpid() & 0xFFFFFFFF,
                o_t_size=size,
                t_o_size=size,
                large=large,
                path=path,
                rpi_us=self._rpi_us,
            )
            service = LARGE_FORWARD_OPEN if large else FORWARD_OPEN
            # to the Connection Manager of the module we talk to: the route is in the connection path itself
            forward_open = encode_request(service, CONNECTION_MANAGER, encode_forward_open(fo))
            reply = await self.unconnected(forward_open, routed=False)
            if reply.status == 0 and len(reply.data) >= 8:
                o_t_id, t_o_id = struct.unpack_from("<II", reply.data)
                self._connection = dataclasses.replace(fo, o_t_id=o_t_id, t_o_id=t_o_id)
                self.connection_size = size
                self.mode = "large connected" if large else "connected"
                return
            ext = reply.extended[0] if reply.extended else None
            if reply.status in _NOT_SUPPORTED or (reply.status == 0x01 and ext in _SIZE_REFUSED):
                log.debug("%s:%d: %s Forward Open: %s", self.host, self.port, size, reply.describe())
                continue
            what = "Large Forward Open" if large else "Forward Open"
            raise CipRefused(
                what, reply.status, reply.extended, _refusal_hint(reply.status, reply.extended, self.route)
            )
        log.info("%s:%d: no Forward Open accepted; using unconnected messaging", self.host, self.port)

    async def request(self, message: bytes) -> Reply:
        """Send one Message Router request over the connection (or unconnected) and return its reply."""
        if self._connection is not None:
            return await self._connected(message)
        return await self.unconnected(message)

    async def unconnected(self, message: bytes, *, routed: bool = True) -> Reply:
        """SendRRData; through Unconnected Send to the Connection Manager when there is a route (and ``routed``)."""
        routed = routed and bool(self.route)
        body = encode_request(UNCONNECTED_SEND, CONNECTION_MANAGER, encode_unconnected_send(message, self.route))
        data = encode_cpf([(NULL_ADDRESS, b""), (UNCONNECTED_DATA, body if routed else message)])
        answer = await self._exchange(Encapsulation(SEND_RR_DATA, session=self._session, data=data))
        reply = self._item(answer, UNCONNECTED_DATA)
        if routed and reply.service == UNCONNECTED_SEND and message[0] != UNCONNECTED_SEND and reply.status:
            # the Connection Manager could not deliver it: a routing problem, not the request's
            raise CipRefused(
                "Unconnected Send",
                reply.status,
                reply.extended,
                _refusal_hint(reply.status, reply.extended, self.route),
            )
        return reply

    async def _connected(self, message: bytes) -> Reply:
        assert self._connection is not None  # noqa: S101  (only called with a connection)
        self._sequence = (self._sequence + 1) & 0xFFFF
        items = [
            (CONNECTED_ADDRESS, struct.pack("<I", self._connection.o_t_id)),
            (CONNECTED_DATA, struct.pack("<H", self._sequence) + message),
        ]
        answer = await self._exchange(Encapsulation(SEND_UNIT_DATA, session=self._session, data=encode_cpf(items)))
        payload = self._payload(answer, CONNECTED_DATA)
        if len(payload) < 2 or struct.unpack_from("<H", payload)[0] != self._sequence:
            raise CipLost("connected reply out of sequence")
        return self._decode(payload[2:])

    def _payload(self, answer: Encapsulation, item_type: int) -> bytes:
        if answer.status != 0:
            # the device answered, and refused the message itself (not a CIP status inside it): some
            # servers answer a route they do not have, or a service they do not parse, this way
            raise CipRefused(
                "EtherNet/IP message",
                answer.status,
                (),
                f"the device did not take the request: wrong route or slot? check 'route' (now {_hops(self.route)}; "
                "a device that does not route, e.g. a Micro800, needs family: micro800 or route: []) and that it is "
                "a Logix controller",
                cip=False,
            )
        try:
            items = decode_cpf(answer.data)
        except CipDecodeError as exc:
            raise CipLost(str(exc)) from exc
        for type_id, payload in items:
            if type_id == item_type:
                return payload
        raise CipLost(f"reply carries no CPF item 0x{item_type:04X}")

    def _item(self, answer: Encapsulation, item_type: int) -> Reply:
        return self._decode(self._payload(answer, item_type))

    @staticmethod
    def _decode(raw: bytes) -> Reply:
        try:
            return decode_reply(raw)
        except CipDecodeError as exc:
            raise CipLost(str(exc)) from exc

    async def _exchange(self, message: Encapsulation) -> Encapsulation:
        if self._reader is None or self._writer is None:
            raise CipLost("not connected")
        if self._writer.is_closing():  # asyncio's drain would raise ConnectionResetError; uvloop's write, RuntimeError
            raise CipLost("connection lost")
        context = os.urandom(8)
        request = Encapsulation(message.command, message.session, 0, context, message.data)
        try:
            async with asyncio.timeout(self._timeout_s):
                self._writer.write(request.encode())
                await self._writer.drain()
                while True:
                    header, length = Encapsulation.decode_header(await self._reader.readexactly(HEADER.size))
                    data = await self._reader.readexactly(length)
                    if header.context == context and header.command == message.command:
                        return Encapsulation(header.command, header.session, header.status, header.context, data)
                    log.debug("%s:%d: dropped a stale reply (command 0x%02X)", self.host, self.port, header.command)
        except TimeoutError as exc:
            raise CipLost(f"no reply within {self._timeout_s:g} s") from exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise CipLost(f"connection lost: {exc!r}") from exc
        except CipDecodeError as exc:
            raise CipLost(str(exc)) from exc

    async def close(self) -> None:
        """Forward Close and UnRegisterSession (best effort), then the socket; idempotent."""
        writer, connection = self._writer, self._connection
        self._connection = None
        if writer is not None and not writer.is_closing():
            with contextlib.suppress(CipLost, CipRefused):
                if connection is not None:
                    forward_close = encode_request(FORWARD_CLOSE, CONNECTION_MANAGER, encode_forward_close(connection))
                    await self.unconnected(forward_close, routed=False)
            # the Forward Close may have found the connection gone: uvloop's transport raises on a write then
            if not writer.is_closing():
                with contextlib.suppress(OSError):
                    writer.write(Encapsulation(UNREGISTER_SESSION, session=self._session).encode())
        self._reader = self._writer = None
        self.mode = "closed"
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
