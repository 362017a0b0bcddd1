"""One instrument's port: open, read frames, poll, write commands, and reopen with backoff when it goes away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import termios
import time
from collections.abc import Awaitable, Callable

import serial_asyncio_fast

from bridges.http.mapping import MappedEvent
from bridges.serial.events import EventError, EventMaker
from bridges.serial.framing import Frame, FrameError, make_framer
from bridges.serial.protocols import ParseError, Parser, Reading, make_parser
from bridges.source import DeviceDown, PollClock, Sample, Samples, SourceEvent, TagSpec
from model.bridges.serial import MtSicsProtocol, SartoriusProtocol, ScannerProtocol, SerialDevice
from model.envelope import Quality
from uns import clock
from uns.backoff import Backoff
from uns.errors import BridgeError, DeviceUnreachable
from uns.logs import RateLimitedLog
from uns.sparkplug import DataType

__all__ = ["COUNTERS", "SerialPort"]

log = logging.getLogger(__name__)

COUNTERS = {"frames": "Status/Frames", "refused": "Status/Refused", "missed_polls": "Status/MissedPolls",
            "events": "Status/Events"}  # fmt: skip
"""Each device's counters and their metrics: frames read, frames refused, polls unanswered, MES events."""
_PARITY = {"none": "N", "even": "E", "odd": "O", "mark": "M", "space": "S"}  # pyserial's PARITY_* values
_COMMANDS: dict[str, dict[str, bytes]] = {
    "mt_sics": {"poll": b"SI\r\n", "Command/Zero": b"Z\r\n", "Command/Tare": b"T\r\n"},
    "sartorius": {"poll": b"\x1bP\r\n", "Command/Zero": b"\x1bV\r\n", "Command/Tare": b"\x1bT\r\n"},
}
"""The protocol's own commands: MT-SICS SI (weight at once), Z, T; Sartorius SBI ESC P (print), ESC V, ESC T."""
_READ = 4096
_WRITE_TIMEOUT_S = 2.0


class _Lost(Exception):
    """The port is gone (closed, unplugged, an I/O error)."""


class SerialPort:
    """One device: ``run()`` keeps its port open (backoff between attempts) and reports what it reads.

    Args:
        bridge: the bridge's name, for logs and event ids.
        config: the device.
        emit: where samples and ``DeviceDown`` go (the source's queue).
        publish: publishes MES events at QoS 1 and waits for the broker's acknowledgement.
    """

    def __init__(
        self,
        *,
        bridge: str,
        config: SerialDevice,
        emit: Callable[[SourceEvent], Awaitable[None]],
        publish: Callable[[list[MappedEvent]], Awaitable[None]],
    ) -> None:
        self.bridge = bridge
        self.config = config
        self.id = config.id
        self._emit = emit
        self._publish = publish
        self._parser: Parser = make_parser(config.protocol)
        self._events = EventMaker(connector=bridge, device=config.id, events=config.events)
        self._warn = RateLimitedLog(log)
        self.counts = dict.fromkeys(COUNTERS, 0)
        self._names = COUNTERS
        self._frames_name = self._names["frames"]
        self.scans = 0
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()  # one request (poll or command) at a time: answers carry no request id
        self._waiting: tuple[str, asyncio.Future[Reading | FrameError | ParseError]] | None = None
        self.down = True
        self._reported_down = False
        commands = _COMMANDS.get(config.protocol.kind, {})
        self._commands = {name: command for name, command in commands.items() if name != "poll"}
        poll = config.poll
        self._poll_command = b""
        if poll is not None:
            self._poll_command = (
                poll.command.encode("latin-1") if poll.command is not None else commands.get("poll", b"")
            )

    def tags(self) -> list[TagSpec]:
        """The protocol's metrics, then the device's status counters and its last refusal."""
        tags = self._parser.tags(self.id)
        if not isinstance(self.config.protocol, MtSicsProtocol | SartoriusProtocol):
            tags = [tag for tag in tags if not tag.name.startswith("Command/")]
        status = [TagSpec(self.id, name, DataType.Int64) for name in COUNTERS.values()]
        status.append(TagSpec(self.id, "Status/LastRefusal", DataType.String))
        return [*tags, *status]

    # -- the connection ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Open, read and poll; on a loss report the device down once and reopen with backoff. Until cancelled."""
        config = self.config
        backoff = Backoff(min_s=config.backoff_min_s, max_s=config.backoff_max_s)
        while True:
            try:
                reader, writer = await self._open()
            except (OSError, ValueError) as exc:  # pyserial's SerialException is an OSError
                await self._lost(f"cannot open {config.port}: {exc}")
                await asyncio.sleep(backoff.failed())
                continue
            except termios.error as exc:  # the port exists but refuses the line settings (a pty and parity)
                await self._lost(f"cannot open {config.port}: it refuses {self._settings()}: {exc}")
                await asyncio.sleep(backoff.failed())
                continue
            log.info("serial %s: device %s: %s open", self.bridge, self.id, config.port)
            self._writer = writer
            try:
                await self._session(reader, backoff)
            except _Lost as exc:
                await self._lost(str(exc))
            finally:
                self._writer = None
                writer.close()
                with contextlib.suppress(Exception):  # the port is gone already: closing may fail too
                    await writer.wait_closed()
            await asyncio.sleep(backoff.failed())

    def _settings(self) -> str:
        c = self.config
        return f"{c.baudrate} baud {c.bytesize}{_PARITY[c.parity]}{c.stopbits:g}"

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        c = self.config
        return await serial_asyncio_fast.open_serial_connection(
            url=c.port, baudrate=c.baudrate, bytesize=c.bytesize, parity=_PARITY[c.parity], stopbits=c.stopbits,
            xonxoff=c.xonxoff, rtscts=c.rtscts, exclusive=c.port.startswith("/"),
        )  # fmt: skip

    async def _lost(self, reason: str) -> None:
        waiting = self._waiting
        if waiting is not None and not waiting[1].done():
            waiting[1].set_exception(DeviceUnreachable(self.bridge, self.config.port, f"device {self.id}: {reason}"))
        self.down = True
        if not self._reported_down:
            self._reported_down = True
            log.warning("serial %s: device %s down: %s", self.bridge, self.id, reason)
            await self._emit(DeviceDown(self.id, reason))

    async def _session(self, reader: asyncio.StreamReader, backoff: Backoff) -> None:
        self.down = False
        await self._emit(self._opened(clock.now_ms()))  # the device is there, even before it sends
        tasks = {asyncio.create_task(self._read_loop(reader, backoff), name=f"serial[{self.bridge}].{self.id}.read")}
        if self.config.poll is not None:
            tasks.add(asyncio.create_task(self._poll_loop(backoff), name=f"serial[{self.bridge}].{self.id}.poll"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # _Lost from the reader; a bug from either is raised, not swallowed

    async def _read_loop(self, reader: asyncio.StreamReader, backoff: Backoff) -> None:
        framer = make_framer(self.config.framing)
        while True:
            try:
                data = await reader.read(_READ)
            except OSError as exc:  # SerialException too: an unplugged USB adapter, a closed pty
                raise _Lost(f"{self.config.port}: {exc}") from None
            if not data:
                raise _Lost(f"{self.config.port} closed")
            now = time.monotonic()
            now_ms = clock.now_ms()
            for item in framer.feed(data, now):
                await self._frame(item, now_ms)
            if self.config.poll is None:
                self._back(backoff)

    def _opened(self, now_ms: int) -> Samples:
        """What is known once the port opens: the status, commands idle, no scans yet."""
        samples = [Sample(name, False, now_ms) for name in self._commands]
        if isinstance(self.config.protocol, ScannerProtocol):
            samples.append(Sample("Scans", self.scans, now_ms))
        return Samples(self.id, [*samples, *self._status(now_ms, "").samples])

    async def _ask_tare(self) -> None:
        """MT-SICS: the tare in use (TA), so the birth carries it; a scale without TA answers ES (left null)."""
        with contextlib.suppress(TimeoutError, BridgeError):
            await self.request(b"TA\r\n", "TA", self.config.poll.timeout_s if self.config.poll else 1.0)

    def _back(self, backoff: Backoff) -> None:
        if self._reported_down:
            log.info("serial %s: device %s is back", self.bridge, self.id)
        self._reported_down = False
        backoff.succeeded()

    # -- frames ---------------------------------------------------------------------------------

    async def _frame(self, item: Frame | FrameError, now_ms: int) -> None:
        if isinstance(item, FrameError):
            self._answered(item)
            await self._refuse(f"offset {item.offset}: {item.reason}", now_ms)
            return
        try:
            reading = self._parser.parse(item.data)
        except ParseError as exc:
            self._answered(exc)
            await self._refuse(f"offset {item.offset + exc.column}: {exc.reason}: {item.data[:64]!r}", now_ms)
            return
        self.counts["frames"] += 1
        self._answered(reading)
        try:
            events = self._events.make(reading, now_ms)
        except EventError as exc:
            await self._refuse(f"offset {item.offset}: event {exc}", now_ms)
            events = []
        if events:
            await self._publish(events)  # acknowledged before the samples go: a crash repeats, never loses
            self.counts["events"] += len(events)
        samples = [
            Sample(name, value, now_ms, Quality.good if value is not None else Quality.bad)
            for name, value in reading.values.items()
        ]
        if "Code" in reading.values:
            self.scans += 1
            samples.append(Sample("Scans", self.scans, now_ms))
        samples.append(Sample(self._frames_name, self.counts["frames"], now_ms))
        if events:
            samples.append(Sample(self._names["events"], self.counts["events"], now_ms))
        await self._emit(Samples(self.id, samples))

    def _answered(self, answer: Reading | FrameError | ParseError) -> None:
        waiting = self._waiting
        if waiting is None or waiting[1].done():
            return
        want, future = waiting
        if isinstance(answer, Reading) and want and answer.answers not in (want, "*"):
            return  # another command's answer (an unsolicited weight while a zero is pending)
        future.set_result(answer)

    async def _refuse(self, reason: str, now_ms: int) -> None:
        self.counts["refused"] += 1
        text = f"serial {self.bridge}: device {self.id} ({self.config.port}): {reason}"
        self._warn.warning(f"{self.id}|{reason.partition(': ')[2][:40]}", "%s", text)
        await self._emit(self._status(now_ms, text[:500]))

    def _status(self, now_ms: int, refusal: str | None) -> Samples:
        samples = [Sample(name, self.counts[c], now_ms) for c, name in self._names.items()]
        if refusal is not None:
            quality = Quality.uncertain if refusal else Quality.good
            samples.append(Sample("Status/LastRefusal", refusal, now_ms, quality))
        return Samples(self.id, samples)

    # -- requests -------------------------------------------------------------------------------

    async def send(self, command: bytes) -> None:
        """Write ``command`` expecting no answer."""
        writer = self._writer
        if writer is None or self.down:
            raise DeviceUnreachable(self.bridge, self.config.port, f"device {self.id} is not connected")
        async with self._lock:
            writer.write(command)
            async with asyncio.timeout(_WRITE_TIMEOUT_S):
                await writer.drain()

    async def request(self, command: bytes, answers: str, timeout_s: float) -> Reading | FrameError | ParseError:
        """Write ``command`` and wait for its answer (``answers`` '' = any frame); ``TimeoutError`` if none."""
        writer = self._writer
        if writer is None or self.down:
            raise DeviceUnreachable(self.bridge, self.config.port, f"device {self.id} is not connected")
        async with self._lock:
            future: asyncio.Future[Reading | FrameError | ParseError] = asyncio.get_running_loop().create_future()
            self._waiting = (answers, future)
            try:
                writer.write(command)
                async with asyncio.timeout(_WRITE_TIMEOUT_S):
                    await writer.drain()
                async with asyncio.timeout(timeout_s):
                    return await future
            finally:
                self._waiting = None

    async def _poll_loop(self, backoff: Backoff) -> None:
        poll = self.config.poll
        if poll is None:  # pragma: no cover  (started only with a poll)
            return
        missed = 0
        if isinstance(self.config.protocol, MtSicsProtocol):
            await self._ask_tare()
        rounds = PollClock(poll.interval_s)
        while True:
            try:
                await self.request(self._poll_command, "", poll.timeout_s)
            except TimeoutError:
                missed += 1
                self.counts["missed_polls"] += 1
                await self._emit(self._status(clock.now_ms(), None))
                self._warn.warning(f"{self.id}|missed", "serial %s: device %s: no answer to %r within %g s",
                                   self.bridge, self.id, self._poll_command, poll.timeout_s)  # fmt: skip
                if missed >= poll.missed_down and not self._reported_down:
                    self._reported_down = True
                    reason = f"no answer to {missed} polls ({self._poll_command!r}, {poll.timeout_s:g} s each)"
                    log.warning("serial %s: device %s down: %s", self.bridge, self.id, reason)
                    await self._emit(DeviceDown(self.id, reason))
            else:
                missed = 0
                self._back(backoff)
            await rounds.wait()

    async def write(self, name: str, value: object) -> None:
        """A scale command from a DCMD (``Command/Zero``, ``Command/Tare`` with true); waits for the scale's answer."""
        command = self._commands.get(name)
        if command is None:
            raise BridgeError(self.bridge, self.config.port, f"write: device {self.id}: {name} is not writable")
        if value is not True:
            raise BridgeError(self.bridge, self.config.port, f"write: device {self.id}: {name} takes true")
        if self.config.protocol.kind == "sartorius":  # SBI answers ESC T / ESC V with nothing: sent is done
            await self.send(command)
            log.info("serial %s: device %s: %s sent", self.bridge, self.id, name)
            return
        timeout_s = self.config.poll.timeout_s if self.config.poll else 2.0
        answers = command.decode("latin-1").strip()[:1]  # MT-SICS answers Z with Z A, T with T S
        try:
            answer = await self.request(command, answers, timeout_s)
        except TimeoutError:
            raise DeviceUnreachable(
                self.bridge, self.config.port, f"device {self.id}: {name}: no answer within {timeout_s:g} s"
            ) from None
        if isinstance(answer, FrameError | ParseError):
            raise BridgeError(self.bridge, self.config.port, f"device {self.id}: {name}: unreadable answer: {answer}")
        if answer.refusal:
            raise BridgeError(self.bridge, self.config.port, f"device {self.id}: {name} refused: {answer.refusal}")
        log.info("serial %s: device %s: %s done", self.bridge, self.id, name)
