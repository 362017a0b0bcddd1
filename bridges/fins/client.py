"""An asyncio FINS client over UDP or FINS/TCP: one request at a time, replies matched to requests by SID.

UDP is a connected datagram socket: a reply whose SID (or command code) is not the one awaited is a
late answer to a request that already timed out, and is discarded and counted, never taken for the
answer to the current request. A timed-out UDP request is sent again with a new SID (``retries``).
TCP opens with the FINS/TCP node address handshake; a TCP timeout means the connection is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
from collections.abc import Sequence
from typing import Literal

from bridges.fins.endcodes import tcp_error_text
from bridges.fins.frame import (
    CONTROLLER_DATA_READ,
    MEMORY_AREA_READ,
    MEMORY_AREA_WRITE,
    MULTIPLE_MEMORY_AREA_READ,
    TCP_CLIENT_NODE,
    TCP_FRAME,
    TCP_HEADER_SIZE,
    TCP_SERVER_NODE,
    FinsFrameError,
    FinsNode,
    FinsResponse,
    command_frame,
    memory_read_body,
    memory_write_body,
    multiple_read_body,
    parse_response,
    parse_tcp_header,
    tcp_packet,
)
from model.bridges.fins_address import FinsAddress
from uns.errors import DeviceRefused, DeviceUnreachable

__all__ = ["FinsClient", "FinsLink"]

log = logging.getLogger(__name__)

_INBOX = 64  # datagrams waiting to be matched; more means nobody is reading: drop the oldest


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FinsLink:
    """Where and how to reach one PLC."""

    bridge: str
    endpoint: str
    host: str
    port: int
    transport: Literal["udp", "tcp"]
    dest: FinsNode
    """DNA/DA1/DA2; over TCP a DA1 of 0 means the node the handshake reports."""
    source_network: int = 0
    source_node: int = 0
    """SA1; 0 = over UDP the last byte of our IP address, over TCP the node the PLC assigns."""
    source_port: int = 0
    """UDP: the local port to send from and receive on (0 = any)."""
    timeout_s: float = 2.0
    connect_timeout_s: float = 5.0
    retries: int = 1
    """UDP only: resend a request that got no answer this many times (new SID each time)."""


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes | Exception] = asyncio.Queue()

    def _put(self, item: bytes | Exception) -> None:
        if self.inbox.qsize() >= _INBOX:
            self.inbox.get_nowait()
        self.inbox.put_nowait(item)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._put(data)

    def error_received(self, exc: Exception) -> None:
        self._put(exc)  # ICMP port unreachable on a connected socket: nobody listens there


class FinsClient:
    """One FINS connection to one PLC. Not safe for concurrent requests (PlcSource serialises them)."""

    def __init__(self, link: FinsLink) -> None:
        self.link = link
        self.dest = link.dest
        self.source = FinsNode(link.source_network, link.source_node, 0)
        self.stale_replies = 0
        """Replies discarded because their SID or command was not the one awaited."""
        self._sid = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._datagrams: _Datagrams | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def local_port(self) -> int | None:
        """The port our socket sends from (None when closed)."""
        transport: asyncio.BaseTransport | None = self._udp
        if transport is None and self._writer is not None:
            transport = self._writer.transport
        return None if transport is None else int(transport.get_extra_info("sockname")[1])

    @property
    def connected(self) -> bool:
        """Whether the socket is open (a UDP socket says nothing about the PLC)."""
        return self._udp is not None or self._writer is not None

    async def connect(self) -> None:
        """Open the socket; over TCP also run the node address handshake.

        Raises:
            DeviceUnreachable: TCP refused, reset or no handshake answer in time.
            DeviceRefused: the FINS/TCP handshake answered with an error code (connections full, node in use).
        """
        await self.close()
        try:
            async with asyncio.timeout(self.link.connect_timeout_s):
                if self.link.transport == "udp":
                    await self._open_udp()
                else:
                    await self._open_tcp()
        except TimeoutError:
            await self.close()
            raise self._unreachable(f"no answer to connect within {self.link.connect_timeout_s} s") from None
        except OSError as exc:
            await self.close()
            raise self._unreachable(f"connect failed: {exc}") from exc
        except asyncio.IncompleteReadError as exc:
            await self.close()
            raise self._unreachable("the PLC closed the connection during the FINS/TCP handshake") from exc
        except FinsFrameError as exc:
            await self.close()
            raise DeviceRefused(
                self.link.bridge,
                self.link.endpoint,
                f"port {self.link.port} does not answer FINS/TCP ({exc}): check port and transport",
            ) from exc
        except BaseException:
            await self.close()
            raise

    async def _open_udp(self) -> None:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Datagrams,
            local_addr=("0.0.0.0", self.link.source_port) if self.link.source_port else None,  # noqa: S104
            remote_addr=(self.link.host, self.link.port),
            family=socket.AF_INET,
        )
        self._udp, self._datagrams = transport, protocol
        if not self.source.node:
            # Omron's automatic address conversion maps a node to the last byte of its IP address
            local = transport.get_extra_info("sockname")
            self.source = FinsNode(self.link.source_network, int(str(local[0]).rsplit(".", 1)[-1]) or 1, 0)
        if not self.dest.node:
            self.dest = dataclasses.replace(self.dest, node=_last_byte(self.link.host))

    async def _open_tcp(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.link.host, self.link.port)
        self._writer.write(tcp_packet(TCP_CLIENT_NODE, self.link.source_node.to_bytes(4, "big")))
        await self._writer.drain()
        header = parse_tcp_header(await self._reader.readexactly(TCP_HEADER_SIZE))
        if header.error:
            raise DeviceRefused(
                self.link.bridge,
                self.link.endpoint,
                f"the PLC refused the FINS/TCP connection: {tcp_error_text(header.error)}: "
                + _TCP_ADVICE.get(header.error, "check the PLC's FINS/TCP settings"),
            )
        payload = await self._reader.readexactly(header.length)
        if header.command != TCP_SERVER_NODE or len(payload) < 8:
            raise self._unreachable(f"FINS/TCP handshake answered with command {header.command}, not 1")
        client_node, server_node = int.from_bytes(payload[0:4], "big"), int.from_bytes(payload[4:8], "big")
        self.source = FinsNode(self.link.source_network, client_node & 0xFF, 0)
        if self.dest.network == 0 and self.dest.node and self.dest.node != server_node & 0xFF:
            # on its own network the PLC is the node it just named: frames for another node go nowhere
            raise DeviceRefused(
                self.link.bridge,
                self.link.endpoint,
                f"node {self.dest.node} is configured but the PLC at {self.link.host}:{self.link.port} says it is "
                f"FINS node {server_node & 0xFF}: set node to {server_node & 0xFF} (or null to take it from the "
                "handshake), or set network to reach another PLC through this one",
            )
        if not self.dest.node:
            self.dest = dataclasses.replace(self.dest, node=server_node & 0xFF)
        log.debug("%s: FINS/TCP node %d assigned, PLC is node %d", self.link.endpoint, client_node, server_node)

    async def close(self) -> None:
        """Close the socket; idempotent."""
        udp, self._udp, self._datagrams = self._udp, None, None
        if udp is not None:
            udp.close()
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def request(self, code: int, body: bytes = b"") -> FinsResponse:
        """Send one command and return its response (any end code).

        Raises:
            DeviceUnreachable: no socket, the socket failed, or no matching reply in time (after retries).
        """
        attempts = 1 + (self.link.retries if self.link.transport == "udp" else 0)
        for attempt in range(attempts):
            self._sid = self._sid % 255 + 1
            sid = self._sid
            frame = command_frame(dest=self.dest, source=self.source, sid=sid, code=code, body=body)
            try:
                async with asyncio.timeout(self.link.timeout_s):
                    self._send(frame)
                    return await self._reply(sid, code)
            except TimeoutError:
                log.debug("%s: no reply to SID %d (attempt %d/%d)", self.link.endpoint, sid, attempt + 1, attempts)
            except (OSError, asyncio.IncompleteReadError, FinsFrameError) as exc:
                await self.close()
                raise self._unreachable(f"connection lost: {exc or type(exc).__name__}") from exc
        if self.link.transport == "tcp":
            await self.close()  # a late reply would desynchronise the stream: start over
        raise self._unreachable(
            f"no FINS reply within {self.link.timeout_s} s ({attempts} attempt(s)) from node "
            f"{self.dest.network}.{self.dest.node}.{self.dest.unit}: check the PLC is on, the address and port, "
            "and its FINS node address"
        )

    def _send(self, frame: bytes) -> None:
        if self._udp is not None:
            self._udp.sendto(frame)
        elif self._writer is not None:
            self._writer.write(tcp_packet(TCP_FRAME, frame))
        else:
            raise self._unreachable("not connected")

    async def _reply(self, sid: int, code: int) -> FinsResponse:
        while True:
            frame = await self._receive()
            try:
                response = parse_response(frame)
            except FinsFrameError as exc:
                self.stale_replies += 1
                log.debug("%s: discarded a frame that is not a FINS response: %s", self.link.endpoint, exc)
                continue
            if response.header.sid == sid and response.code == code:
                return response
            self.stale_replies += 1
            log.debug(
                "%s: discarded a late reply (SID %d, command %04X) while awaiting SID %d",
                self.link.endpoint,
                response.header.sid,
                response.code,
                sid,
            )

    async def _receive(self) -> bytes:
        if self._datagrams is not None:
            item = await self._datagrams.inbox.get()
            if isinstance(item, Exception):
                raise item if isinstance(item, OSError) else OSError(str(item))
            return item
        if self._reader is None:
            raise self._unreachable("not connected")
        while True:
            header = parse_tcp_header(await self._reader.readexactly(TCP_HEADER_SIZE))
            payload = await self._reader.readexactly(header.length)
            if header.error:
                raise OSError(f"the PLC reported {tcp_error_text(header.error)}")
            if header.command == TCP_FRAME:
                return payload
            # other FINS/TCP commands (connection confirmation) carry no reply: skip them

    async def read_area(self, address: FinsAddress, count: int, *, bits: bool = False) -> FinsResponse:
        """Memory Area Read of ``count`` words (or bits, one byte each)."""
        return await self.request(MEMORY_AREA_READ, memory_read_body(address, count, bits=bits))

    async def write_area(self, address: FinsAddress, count: int, data: bytes, *, bits: bool = False) -> FinsResponse:
        """Memory Area Write of ``count`` words (or bits) given as their bytes."""
        return await self.request(MEMORY_AREA_WRITE, memory_write_body(address, count, data, bits=bits))

    async def read_multiple(self, addresses: Sequence[FinsAddress]) -> FinsResponse:
        """Multiple Memory Area Read: each response item is the area code then 2 bytes (word) or 1 (bit)."""
        return await self.request(MULTIPLE_MEMORY_AREA_READ, multiple_read_body(addresses))

    async def controller_data(self) -> FinsResponse:
        """Controller Data Read: the CPU model (20 ASCII bytes) and version (20) first."""
        return await self.request(CONTROLLER_DATA_READ)

    def _unreachable(self, reason: str) -> DeviceUnreachable:
        return DeviceUnreachable(self.link.bridge, self.link.endpoint, reason)


_TCP_ADVICE = {
    0x20: "close other FINS/TCP clients or raise the unit's connection count",
    0x21: "another client uses this node address: set source_node to 0 (assigned) or a free node",
    0x22: "the PLC accepts FINS/TCP only from listed IP addresses: add this host's address",
    0x23: "set source_node within 1..254",
    0x24: "source_node equals the PLC's own node address: choose another",
    0x25: "every automatically assigned node is taken: set source_node, or free connections",
}


def _last_byte(host: str) -> int:
    try:
        return int(socket.inet_aton(host)[-1]) or 1
    except OSError:
        return 0  # a host name: the PLC's node cannot be guessed, DA1 0 reaches the unit we talk to
