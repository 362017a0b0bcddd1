"""A small PLC-like TCP device for the shared PLC layer's tests: a line protocol server and its PlcDevice.

Protocol (one line each way): ``HELLO <slot>`` -> ``OK`` or ``NO <reason>``; ``READ <addr> ...`` ->
``VALS <int or E<code>> ...``; ``WRITE <addr> <int>`` -> ``OK`` or ``E<code>``. Addresses are names in
the server's memory; one that is not there answers ``E0A``. The server can refuse every connection,
go silent on its open connections (half-open), reset the connection at the next read, or stop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
from collections.abc import Mapping, Sequence
from typing import Self

from bridges.plc import GroupRead, TagProblem
from bridges.source import Sample, TagSpec
from model.bridges.plc import PlcLinkSettings
from model.envelope import Quality
from uns.errors import BridgeError, DeviceRefused, DeviceUnreachable, ReadError
from uns.sparkplug import DataType, MetricValue

__all__ = ["FAST", "ToyDevice", "ToyPlc", "ToyTag"]

FAST = PlcLinkSettings(timeout_s=0.2, connect_timeout_s=0.5, backoff_min_s=0.02, backoff_max_s=0.2)
"""Timeouts and backoff short enough for tests: a half-open connection is found in 1.4 s."""


class ToyPlc:
    """The server: ``async with ToyPlc(memory) as plc``; ``plc.port``; knobs for each failure."""

    def __init__(self, memory: Mapping[str, int]) -> None:
        self.memory = dict(memory)
        self.port = 0
        self.refuse: str | None = None
        """When set, every HELLO is answered ``NO <refuse>``."""
        self.connects = 0
        self.writes: list[tuple[str, int]] = []
        self.reset_next_read = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._muted: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen (on the same port as before once one was chosen)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and close every connection (the PLC is switched off)."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    def mute(self) -> None:
        """Stop answering on every open connection, keeping the sockets open (a half-open connection)."""
        self._muted.update(self._writers)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connects += 1
        self._writers.add(writer)
        try:
            while line := await reader.readline():
                if writer in self._muted:
                    continue
                answer = self._answer(line.decode().split(), writer)
                if answer is None:
                    return
                writer.write(answer.encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _answer(self, words: list[str], writer: asyncio.StreamWriter) -> str | None:
        match words:
            case ["HELLO", _slot]:
                return f"NO {self.refuse}" if self.refuse else "OK"
            case ["READ", *addresses]:
                if self.reset_next_read:
                    self.reset_next_read = False
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()  # RST, not FIN: the client sees ECONNRESET
                    return None
                return "VALS " + " ".join(str(self.memory[a]) if a in self.memory else "E0A" for a in addresses)
            case ["WRITE", address, value] if address in self.memory:
                self.memory[address] = int(value)
                self.writes.append((address, int(value)))
                return "OK"
            case ["WRITE", _address, _value]:
                return "E0A"
        return "E01"


@dataclasses.dataclass(frozen=True, slots=True)
class ToyTag:
    """One tag of the toy device: metric name, address, poll group, writable."""

    name: str
    address: str
    group: str = "default"
    writable: bool = False


class ToyDevice:
    """A PlcDevice for ToyPlc, written like a real driver (but its socket errors left unwrapped on purpose)."""

    def __init__(
        self,
        *,
        device_id: str,
        port: int,
        tags: Sequence[ToyTag],
        groups: Mapping[str, float] | None = None,
        settings: PlcLinkSettings = FAST,
        bug: bool = False,
        swallow_cancel: bool = False,
    ) -> None:
        self.id = device_id
        self.endpoint = f"toy 127.0.0.1:{port} slot 1"
        self.settings = settings
        self.port = port
        self.bug = bug
        """When set, read() raises TypeError (a driver bug)."""
        self.swallow_cancel = swallow_cancel
        """When set, read() swallows a cancel, as Python 3.11's asyncio.wait_for does when it races an answer."""
        self.swallowed = 0
        self._tags = list(tags)
        self._groups = dict(groups or {"default": 0.05})
        self._io: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.connects = 0
        self.closes = 0

    def tags(self) -> Sequence[TagSpec]:
        return [
            TagSpec(self.id, t.name, DataType.Int64, writable=t.writable, description=t.address) for t in self._tags
        ]

    def poll_groups(self) -> Mapping[str, float]:
        return self._groups

    def _unreachable(self, reason: str) -> DeviceUnreachable:
        return DeviceUnreachable("toy", self.endpoint, f"device {self.id}: {reason}")

    async def connect(self) -> None:
        self.connects += 1
        try:
            self._io = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError as exc:
            raise self._unreachable(f"cannot connect: {exc.strerror or exc}") from exc
        answer = await self._ask("HELLO 1")
        if answer.startswith("NO "):
            await self.close()
            raise DeviceRefused("toy", self.endpoint, f"device {self.id}: {answer[3:]}: check the slot")

    async def _ask(self, line: str) -> str:
        if self._io is None:
            raise self._unreachable("not connected")
        reader, writer = self._io
        writer.write(line.encode() + b"\n")
        await writer.drain()
        answer = await reader.readline()  # ConnectionResetError left to PlcSource, like a careless driver
        if not answer:
            raise self._unreachable("connection closed by the PLC")
        return answer.decode().strip()

    async def read(self, group: str) -> GroupRead:
        if self.bug:
            raise TypeError("driver bug: unsupported operand")
        tags = [t for t in self._tags if t.group == group]
        if self.swallow_cancel:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                self.swallowed += 1  # and carry on as if the answer had won the race
        answer = (await self._ask("READ " + " ".join(t.address for t in tags))).split()[1:]
        now = 1_700_000_000_000
        samples: list[Sample] = []
        problems: list[TagProblem] = []
        for tag, word in zip(tags, answer, strict=True):
            if word.startswith("E"):
                samples.append(Sample(tag.name, None, now, Quality.bad))
                problems.append(TagProblem(tag.address, [tag.name], f"0x{word[1:]} object does not exist"))
            else:
                samples.append(Sample(tag.name, int(word), now))
        return GroupRead(samples, problems)

    async def write(self, name: str, value: MetricValue) -> None:
        tag = next(t for t in self._tags if t.name == name)
        if not isinstance(value, int):
            raise BridgeError("toy", self.endpoint, f"device {self.id}: {name} ({tag.address}): not an integer")
        answer = await self._ask(f"WRITE {tag.address} {value}")
        if answer != "OK":
            raise ReadError("toy", self.endpoint, tag.address, f"write refused: {answer}")

    async def close(self) -> None:
        self.closes += 1
        if self._io is not None:
            self._io[1].close()
            self._io = None
