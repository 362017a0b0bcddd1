"""A simulated Omron PLC on the network: FINS over UDP and FINS/TCP on one port number, and faults for tests.

The PLC answers frames addressed to its network (0 or its own) and node (0 or its own) and the CPU
unit, as the Ethernet port of a CS/CJ/NJ does: another node's frame gets no answer, another network
end code 0x0502 (no routing tables), another unit 0x0202 (unit missing). FINS/TCP opens with the
node address handshake (a client asking for node 0 gets one assigned). Faults: refuse the TCP
handshake with an error code, hold back or drop replies, raise the CPU error flags in every end code.

``python -m bridges.sim.fins_server --words N`` runs one on a free port for benches (prints the port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import Self, cast

from bridges.fins.frame import (
    TCP_CLIENT_NODE,
    TCP_FRAME,
    TCP_HEADER_SIZE,
    TCP_SERVER_NODE,
    FinsFrameError,
    parse_command,
    parse_tcp_header,
    response_frame,
    tcp_packet,
)
from bridges.sim.fins_memory import FinsMemory

__all__ = ["REQUESTS_KEPT", "FinsServer", "main"]

log = logging.getLogger(__name__)

REQUESTS_KEPT = 1_000
"""Commands a simulated PLC remembers for tests to inspect (the oldest are forgotten)."""
_NO_ROUTE = 0x0502
_NO_UNIT = 0x0202


def _send_tcp(writer: asyncio.StreamWriter, packet: bytes) -> None:
    if not writer.is_closing():
        writer.write(packet)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: FinsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        reply = self.server.handle(data)
        if reply is not None and self.transport is not None:
            transport = self.transport
            if self.server.reply_port is not None:  # static IP address conversion: a fixed port, not the sender's
                addr = (addr[0], self.server.reply_port)
            self.server.deliver(lambda: transport.sendto(reply, addr))


class FinsServer:
    """One simulated PLC: ``async with FinsServer(port=0) as plc:``, then ``plc.port`` and ``plc.memory``.

    Args:
        bind: Address to listen on.
        port: UDP and TCP port; 0 = a free one (the same number for both).
        node: The PLC's FINS node address; None = the last byte of ``bind``.
        network: Its FINS network.
        memory: Its memory (default: a CJ2M with 3 EM banks).
    """

    def __init__(
        self,
        *,
        bind: str = "127.0.0.1",
        port: int = 0,
        node: int | None = None,
        network: int = 0,
        memory: FinsMemory | None = None,
    ) -> None:
        self.bind = bind
        self.port = port
        self.node = node if node is not None else (int(socket.inet_aton(bind)[-1]) or 1)
        self.network = network
        self.memory = memory or FinsMemory()
        self.requests: deque[tuple[int, bytes]] = deque(maxlen=REQUESTS_KEPT)
        """The last ``REQUESTS_KEPT`` commands served: (command code, parameters); the demo polls all day."""
        self.refuse_tcp: int | None = None
        """Answer the FINS/TCP handshake with this error code (0x20 all connections in use, ...)."""
        self.hold = 0
        """Hold back the next this many replies until ``release()`` (they arrive after the client gave up)."""
        self.drop = 0
        """Send no reply to this many more commands."""
        self.cpu_error = 0
        """OR'ed into every end code's sub byte: 0x40 non-fatal, 0x80 fatal CPU error."""
        self.relay_error: tuple[int, int, int] | None = None
        """Answer every command as a relay node would: (end code, network, node of the relay that failed)."""
        self.reply_port: int | None = None
        """UDP replies go to this port of the sender's address, as a unit set to static IP address conversion
        answers to port 9600 (None: to the port the request came from)."""
        self.tcp_clients = 0
        self._next_client_node = 100
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._held: list[Callable[[], object]] = []

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        for _attempt in range(20):
            tcp = await asyncio.start_server(self._serve_tcp, self.bind, self.port)
            port = int(tcp.sockets[0].getsockname()[1])
            try:
                self._udp, _ = await loop.create_datagram_endpoint(
                    lambda: _Udp(self), local_addr=(self.bind, port), family=socket.AF_INET
                )
            except OSError:
                tcp.close()
                await tcp.wait_closed()
                if self.port:
                    raise
                continue  # the UDP port of that number is taken: try another free TCP port
            self._tcp, self.port = tcp, port
            log.info("simulated FINS PLC node %d listening on %s:%d (UDP and TCP)", self.node, self.bind, port)
            return self
        raise OSError(f"no port free for both UDP and TCP on {self.bind}")

    async def __aexit__(self, *exc_info: object) -> None:
        udp, self._udp = self._udp, None
        if udp is not None:
            udp.close()
        tcp, self._tcp = self._tcp, None
        if tcp is not None:
            tcp.close()
            for writer in list(self._connections):
                writer.close()
            # closed sockets end their handlers at the next read (EOF); cancelling them instead makes
            # asyncio's stream callback log the CancelledError as an error
            handlers, self._handlers = set(self._handlers), set()
            if handlers:
                _, pending = await asyncio.wait(handlers, timeout=2.0)
                for handler in pending:
                    handler.cancel()
            await tcp.wait_closed()

    def deliver(self, send: Callable[[], object]) -> None:
        """Send a reply now, or keep it for ``release()`` while ``hold`` says so."""
        if self.hold:
            self.hold -= 1
            self._held.append(send)
        else:
            send()

    def release(self) -> int:
        """Send the replies held back, oldest first; returns how many."""
        held, self._held = self._held, []
        for send in held:
            send()
        return len(held)

    def handle(self, frame: bytes) -> bytes | None:
        """The response to one FINS frame (None: no answer)."""
        try:
            command = parse_command(frame)
        except FinsFrameError as exc:
            log.debug("simulated FINS PLC: ignored a frame: %s", exc)
            return None
        dest = command.header.dest
        if dest.node not in (0, self.node):
            return None  # not for us: an Ethernet unit drops it
        if self.drop:
            self.drop -= 1
            return None
        self.requests.append((command.code, command.body))
        if self.relay_error is not None:
            code, network, node = self.relay_error
            end, data = 0x8000 | code, bytes((network, node))
        elif dest.network not in (0, self.network):
            end, data = _NO_ROUTE, b""
        elif dest.unit != 0:
            end, data = _NO_UNIT, b""
        else:
            end, data = self.memory.answer(command.code, command.body)
        return response_frame(command.header, command.code, end | self.cpu_error, data)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            if not await self._handshake(reader, writer):
                return
            self.tcp_clients += 1
            while True:
                header = parse_tcp_header(await reader.readexactly(TCP_HEADER_SIZE))
                payload = await reader.readexactly(header.length)
                if header.command != TCP_FRAME:
                    writer.write(tcp_packet(header.command, error=0x03))
                    continue
                reply = self.handle(payload)
                if reply is not None:
                    self.deliver(functools.partial(_send_tcp, writer, tcp_packet(TCP_FRAME, reply)))
        except (asyncio.IncompleteReadError, ConnectionError, FinsFrameError):
            pass
        finally:
            self._connections.discard(writer)
            if task is not None:
                self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        header = parse_tcp_header(await reader.readexactly(TCP_HEADER_SIZE))
        payload = await reader.readexactly(header.length)
        error = 0x03 if header.command != TCP_CLIENT_NODE or len(payload) < 4 else (self.refuse_tcp or 0)
        node = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
        if not error and node > 254:
            error = 0x23
        elif not error and node == self.node:
            error = 0x24
        if error:
            writer.write(tcp_packet(TCP_SERVER_NODE, error=error))
            await writer.drain()
            return False
        if node == 0:
            node = self._next_client_node
            self._next_client_node = 100 + (self._next_client_node - 99) % 150
        writer.write(tcp_packet(TCP_SERVER_NODE, node.to_bytes(4, "big") + self.node.to_bytes(4, "big")))
        await writer.drain()
        return True


def main(argv: list[str] | None = None) -> None:
    """Run a simulated PLC until killed; prints ``port <n>`` once listening (for benches' subprocesses)."""
    parser = argparse.ArgumentParser(prog="python -m bridges.sim.fins_server", description=main.__doc__)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--words", type=int, default=0, help="fill D0..D<words-1> with a changing counter")
    args = parser.parse_args(argv)

    async def run() -> None:
        async with FinsServer(bind=args.bind, port=args.port) as server:
            print(f"port {server.port}", flush=True)  # the parent process reads it
            tick = 0
            while True:
                if args.words:
                    words = b"".join(((tick + i) & 0xFFFF).to_bytes(2, "big") for i in range(args.words))
                    server.memory.image("D")[: len(words)] = words
                tick += 1
                await asyncio.sleep(0.1)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
