"""One MQTT connection over TCP or TLS: open and CONNECT, framing, keep-alive, flow control."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import cast

from uns.errors import BrokerError, BrokerUnreachable
from uns.mqtt.codec import MAX_REMAINING_LENGTH, ConnAck, Packet, PacketReader, PingResp, ProtocolError
from uns.mqtt.types import BrokerUrl

__all__ = ["Connection", "OnPackets", "open_connection", "set_nodelay"]

log = logging.getLogger(__name__)

OnPackets = Callable[[list[Packet], "Connection"], None]
"""Receives every decoded packet after CONNACK, with the connection it came on."""

_WRITE_HIGH_WATER = 1 << 20  # callers drain only above 1 MiB unsent: keeps publish cheap
_PINGREQ = b"\xc0\x00"
# every client shares this connect, so name each setting that gives a client its CA (docs/configuration.md)
_CHECK_TLS = (
    "check the CA it trusts (the hub's clients: broker.ca_file, --broker-ca or UNS_BROKER__CA_FILE; "
    "a LoRaWAN bridge's broker: server.ca_file; none set: the system trust store) and that the port speaks TLS"
)
_REFUSALS = {
    1: "unacceptable protocol version: the broker does not speak MQTT 3.1.1",
    2: "client id rejected: choose another client id",
    3: "server unavailable: try again later",
    4: "bad user name or password: check the username/password in the broker URL",
    5: "not authorized: check the username/password in the broker URL",
}


class Connection(asyncio.Protocol):
    """An asyncio protocol speaking MQTT framing; ``lost`` resolves with the reason it ended."""

    transport: asyncio.Transport

    def __init__(self, *, endpoint: str, on_packets: OnPackets) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_packets = on_packets
        self.endpoint = endpoint
        self.reader = PacketReader(max_remaining_length=MAX_REMAINING_LENGTH, endpoint=endpoint)
        self.connack: asyncio.Future[ConnAck] = self._loop.create_future()
        self.lost: asyncio.Future[str] = self._loop.create_future()
        self.last_send = self._loop.time()
        self.write_paused = False
        self.read_paused = False
        self.protocol_error: ProtocolError | None = None
        self._pong: asyncio.Future[None] | None = None
        self._close_reason = ""
        self._drainers: list[asyncio.Future[None]] = []

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport; cap its write buffer; turn Nagle off."""
        # a stream transport: create_connection gives one (uvloop's does not subclass asyncio.Transport)
        transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
        self.transport = transport
        set_nodelay(transport)

    def data_received(self, data: bytes) -> None:
        """Decode and dispatch; a malformed stream drops the connection."""
        try:
            packets = self.reader.feed(data)
        except ProtocolError as exc:
            self.protocol_error = exc
            self._dispatch(exc.packets)  # the good packets before the bad one still count
            log.warning("%s; dropping the connection", exc)
            self.abort(str(exc))
            return
        self._dispatch(packets)

    def connection_lost(self, exc: Exception | None) -> None:
        """Resolve ``lost`` with the reason; wake anyone waiting."""
        reason = self._close_reason or (str(exc) if exc else "") or "closed by the broker"
        if not self.connack.done():
            self.connack.set_exception(BrokerUnreachable(self.endpoint, f"closed before CONNACK ({reason})"))
            self.connack.exception()  # retrieved: open_connection may have timed out already
        if not self.lost.done():
            self.lost.set_result(reason)
        self.resume_writing()

    def pause_writing(self) -> None:
        """The write buffer is above its high-water mark."""
        self.write_paused = True

    def resume_writing(self) -> None:
        """The write buffer drained: release ``drain`` waiters."""
        self.write_paused = False
        for fut in self._drainers:
            if not fut.done():
                fut.set_result(None)
        self._drainers.clear()

    # -- for the client ------------------------------------------------------------------------

    @property
    def is_lost(self) -> bool:
        """True once the transport closed."""
        return self.lost.done()

    def write(self, data: bytes) -> None:
        """Write to the transport; notes the time for keep-alive.

        Dropped once the transport is closing (the connection is lost; the supervisor reconnects and QoS 1/2
        go again): asyncio's transport drops such a write, uvloop's raises RuntimeError into the publisher.
        """
        if self.transport.is_closing():
            return
        self.transport.write(data)
        self.last_send = self._loop.time()

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if self.write_paused and not self.lost.done():
            fut = self._loop.create_future()
            self._drainers.append(fut)
            await fut

    def pause_reading(self) -> None:
        """Stop reading the socket: the broker meets TCP back-pressure."""
        if not self.read_paused and not self.lost.done():
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read the socket again."""
        if self.read_paused and not self.lost.done():
            self.read_paused = False
            self.transport.resume_reading()

    def abort(self, reason: str) -> None:
        """Drop the connection now (no DISCONNECT: the broker publishes the will)."""
        self._close_reason = self._close_reason or reason
        if hasattr(self, "transport"):
            self.transport.abort()

    async def close(self, disconnect: bytes, timeout_s: float) -> None:
        """Send ``disconnect``, flush and close; waits up to ``timeout_s`` for the socket to close."""
        if self.lost.done():
            return
        self._close_reason = "closed by us"
        self.transport.write(disconnect)
        self.transport.close()  # flushes what is buffered first
        await asyncio.wait([self.lost], timeout=timeout_s)
        if not self.lost.done():
            self.transport.abort()

    async def keepalive(self, period_s: float) -> str:
        """PINGREQ when idle for ``period_s``; no PINGRESP within it drops the link. Returns why it ended."""
        while not self.lost.done():
            if period_s <= 0:
                return await self.lost
            idle = self._loop.time() - self.last_send
            if idle < period_s:
                await asyncio.wait([self.lost], timeout=period_s - idle)
                continue
            self._pong = pong = self._loop.create_future()
            self.write(_PINGREQ)
            await asyncio.wait([self.lost, pong], timeout=period_s, return_when=asyncio.FIRST_COMPLETED)
            # while reading is paused for back-pressure a PINGRESP cannot be read: no verdict then
            if not pong.done() and not self.lost.done() and not self.read_paused:
                self.abort(f"no PINGRESP within {period_s:g}s")
                await self.lost
        return self.lost.result()

    def _dispatch(self, packets: list[Packet]) -> None:
        if not self.connack.done() and packets:
            first = packets[0]
            if not isinstance(first, ConnAck):
                self.connack.set_exception(BrokerError(self.endpoint, f"expected CONNACK first, got {first!r}"))
                self.abort("no CONNACK")
                return
            self.connack.set_result(first)
            packets = packets[1:]
        if self._pong is not None:
            for p in packets:
                if type(p) is PingResp and not self._pong.done():
                    self._pong.set_result(None)
                    break
        if packets:
            self._on_packets(packets, self)


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Set TCP_NODELAY on the transport's socket (Nagle off).

    An acknowledgement is a few bytes and must not wait for more data: Nagle with delayed ACKs held
    PUBACKs back ~40 ms per round trip. Set here even though asyncio does it too, since throughput
    depends on it.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _NotMade(Exception):
    """A CONNECT packet's factory failed: carries its error past the mapping of connection errors."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _made(factory: Callable[[], bytes]) -> bytes:
    try:
        return factory()
    except Exception as exc:
        raise _NotMade(exc) from exc


async def open_connection(
    *,
    url: BrokerUrl,
    connect_packet: bytes | Callable[[], bytes],
    on_packets: OnPackets,
    ssl_context: ssl.SSLContext | None,
    timeout_s: float,
) -> tuple[Connection, ConnAck]:
    """TCP (or TLS) connect, send CONNECT, wait for an accepting CONNACK.

    ``connect_packet`` may be made only once the connection is up, right before it is written (a will
    that counts CONNECT packets: a Sparkplug edge node's bdSeq).

    Raises:
        BrokerUnreachable: no connection (the reason says what to check).
        BrokerError: the broker refused us (bad credentials, client id, ...).
        Exception: what a callable ``connect_packet`` raised, as itself (a will that could not be made is
            not the broker's failure).
    """
    endpoint = url.redacted()
    loop = asyncio.get_running_loop()
    conn: Connection | None = None

    def fail(reason: str) -> BrokerUnreachable:
        if conn is not None:
            conn.abort(reason)
        return BrokerUnreachable(endpoint, reason)

    try:
        async with asyncio.timeout(timeout_s):
            _, conn = await loop.create_connection(
                lambda: Connection(endpoint=endpoint, on_packets=on_packets),
                url.host,
                url.port,
                ssl=ssl_context,
                server_hostname=url.host if ssl_context else None,
            )
            conn.write(_made(connect_packet) if callable(connect_packet) else connect_packet)
            connack = await conn.connack
    except _NotMade as exc:  # the packet's own failure (its will's), not the broker's: raised as itself
        if conn is not None:
            conn.abort("connect abandoned")
        raise exc.error from None
    except ssl.SSLError as exc:
        raise fail(f"TLS handshake failed ({exc}): {_CHECK_TLS}") from exc
    except ConnectionRefusedError:
        raise fail("connection refused: is the broker running? check --broker / UNS_BROKER") from None
    except TimeoutError:
        raise fail(f"no answer within {timeout_s:g}s: check the host, port and firewall") from None
    except OSError as exc:
        raise fail(f"{exc.strerror or exc}: check --broker / UNS_BROKER") from exc
    except BaseException:
        if conn is not None:
            conn.abort("connect abandoned")
        raise
    if connack.return_code:
        conn.abort("refused")
        raise BrokerError(endpoint, _REFUSALS.get(connack.return_code, f"refused (return code {connack.return_code})"))
    return conn, connack
