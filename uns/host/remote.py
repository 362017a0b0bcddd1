"""The parent's side of the host worker process (``host.worker``): batches out, republishes back in order.

Each received message is put on the pending batch; the batch goes to the worker once the shell's read
of its client has drained what was queued (a ``call_soon``), so one message at low rate goes alone and at
once, and a burst goes as one batch; a small batch waits while one is in flight and goes at most every
``batch_gap_s`` (``_MIN_PIPELINED``). At most ``window`` batches are in flight: past that the pending batch
grows to ``max_batch`` and then ``put``'s caller waits, reading no more from its client, so the broker's
flow control holds the edge nodes back; nothing is dropped. Answers are read from the pipe by the loop
(``connect_read_pipe``, no thread) and published in order, then mirrored (``uns.host.mirror``).

A worker that dies (its pipe closes) or hangs (no answer for ``hang_s``) is logged once as an ERROR and
started again after the one backoff; the batches it had not answered are counted lost, and its fresh
core asks each edge node that sends DATA for a rebirth (Sparkplug: DATA without a birth), so the state
comes back; it is seeded with the stale marks of the node statuses published last (``uns.host.seeding``).
Closing stops the worker at once (the messages it has not answered are counted lost); a worker whose parent is
killed sees its pipe close and exits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import fcntl
import logging
import os
import pickle
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import IO

from uns.backoff import Backoff
from uns.errors import HostWorkerError
from uns.host.core import node_status_prefix
from uns.host.mirror import HostMirror
from uns.host.worker import Batch, Republish, Result, WorkerConfig
from uns.mqtt.types import Message

__all__ = ["HostWorker"]

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!i")  # multiprocessing.Connection's framing, which the worker reads and writes
_STOP_S = 2.0
_PIPE_BYTES = 1 << 20  # Linux's default most for an unprivileged process (/proc/sys/fs/pipe-max-size)
_MIN_PIPELINED = 64
"""A batch smaller than this waits while another is in flight (Nagle's rule), and goes at most every
``batch_gap_s``: each batch costs a wake-up of the other process (~50-100 us of CPU on each side here),
so at low rates one message goes at once, and as the rate grows batches grow with it."""
_WATCH_S = 0.25


def _pipe() -> tuple[int, int]:
    """A pipe (read end, write end) of ``_PIPE_BYTES``, neither end inherited but by ``pass_fds``."""
    read_fd, write_fd = os.pipe()
    # a batch's answer is up to ~800 KB: in a 64 KiB pipe the worker would wait (and wake us) ~13 times
    with contextlib.suppress(OSError):
        fcntl.fcntl(read_fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    return read_fd, write_fd


def _file(fd: int, mode: str) -> IO[bytes]:
    """Our end of a pipe as a file for the loop's pipe transports."""
    file: IO[bytes] = os.fdopen(fd, mode, buffering=0)
    return file


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has exited already
        process.kill()


class _WorkerLost(Exception):
    """The worker died or hung; the message says which and how."""


class _Pipe(asyncio.Protocol):
    """Frames from the worker's output pipe, parsed as they arrive."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.frames: collections.deque[bytes | None] = collections.deque()
        """Complete frames; None once the pipe closed."""
        self.ready = asyncio.Event()
        self.heard_s = 0.0
        """When the worker last wrote to us (``time.monotonic``)."""

    def data_received(self, data: bytes) -> None:
        self.heard_s = time.monotonic()
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= 4:
            (size,) = _HEADER.unpack_from(buffer, start)
            if len(buffer) - start - 4 < size:
                break
            self.frames.append(bytes(buffer[start + 4 : start + 4 + size]))
            start += 4 + size
        if start:
            del buffer[:start]
            self.ready.set()

    def eof_received(self) -> bool | None:
        self.frames.append(None)
        self.ready.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.frames or self.frames[-1] is not None:
            self.frames.append(None)
        self.ready.set()


class HostWorker:
    """A ``HostCore`` in a child process, fed batches in arrival order; its state mirrored in ``mirror``."""

    def __init__(
        self,
        *,
        config: WorkerConfig,
        mirror: HostMirror,
        window: int = 4,
        max_batch: int = 512,
        hang_s: float = 10.0,
        batch_gap_s: float = 0.003,
        backoff: Backoff | None = None,
    ) -> None:
        self._config = config
        self.mirror = mirror
        self._window = window
        self._max_batch = max_batch
        self.hang_s = hang_s
        self._gap_s = batch_gap_s
        self._sent_s = 0.0  # the loop's time of the last batch sent
        self._hung: str | None = None
        self._watch: asyncio.TimerHandle | None = None
        self._backoff = backoff or Backoff(min_s=0.2, max_s=30.0)
        self._pending: Batch = []
        self._flush_scheduled = False
        self._room = asyncio.Event()
        self._room.set()
        self._inflight: collections.deque[tuple[float, int]] = collections.deque()
        """Per batch sent and not answered: when it was sent, and its messages."""
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.WriteTransport | None = None
        self._reader: asyncio.ReadTransport | None = None
        self._pipe = _Pipe()
        self._status_prefix = node_status_prefix(config.plant.enterprise.id)
        self._statuses: dict[str, bytes] = dict(config.seeds)
        """The last node status published per topic (what the broker retains): a new worker's seeds."""

    @property
    def pid(self) -> int | None:
        """The worker process's id (None when none runs)."""
        return None if self._process is None else self._process.pid

    @property
    def backlog(self) -> int:
        """Messages given to the worker and not answered yet, or waiting to go."""
        return len(self._pending) + sum(n for _, n in self._inflight)

    async def start(self) -> None:
        """Start a worker and wait for its first answer (its core is built).

        Raises:
            HostWorkerError: it could not be started, died, or did not answer; nothing is left running.
        """
        try:
            await self._start()
        except (_WorkerLost, OSError) as exc:  # TimeoutError is an OSError
            pid = self.pid
            await self._stop(kill=True)
            if isinstance(exc, TimeoutError):
                reason = f"did not answer within {self._start_s:.0f} s"
            elif isinstance(exc, _WorkerLost):
                reason = str(exc)
            else:
                reason = f"failed to launch ({exc})"
            raise HostWorkerError(pid, reason) from exc

    @property
    def _start_s(self) -> float:
        return max(self.hang_s, 30.0)

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        inbox_r, inbox_w = _pipe()
        outbox_r, outbox_w = _pipe()
        try:
            # its own interpreter running uns.host.worker alone: not a fork of the threaded hub, and not
            # multiprocessing, whose children import the hub's __main__ (DuckDB, bridges, MES: ~40 MiB more) beside
            # a fork server and a resource tracker (~38 MiB)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "uns.host.worker",
                str(inbox_r),
                str(outbox_w),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,  # the pipes are its output; a crash's traceback goes to stderr
                pass_fds=(inbox_r, outbox_w),
            )
        except BaseException:
            os.close(inbox_w)
            os.close(outbox_r)
            raise
        finally:
            os.close(inbox_r)  # the worker's ends: it alone must hold them, so its death closes our pipe
            os.close(outbox_w)
        self._process = process
        pipe = _Pipe()
        self._pipe = pipe
        self._reader, _ = await loop.connect_read_pipe(lambda: pipe, _file(outbox_r, "rb"))
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, _file(inbox_w, "wb"))
        self._write(pickle.dumps(self._config, protocol=pickle.HIGHEST_PROTOCOL))
        self._hung = None
        async with asyncio.timeout(self._start_s):
            result = await self._next_result()
        self._take_state(result)
        self._watch = loop.call_later(_WATCH_S, self._check_hung)
        log.info("Sparkplug host worker started (pid %s)", process.pid)

    def _write(self, data: bytes) -> None:
        if self._writer is not None:
            self._writer.write(_HEADER.pack(len(data)) + data)

    def put(self, topic: str, payload: bytes, now_ms: int) -> None:
        """Add a received message to the pending batch (it goes once the caller's read drained its queue)."""
        pending = self._pending
        pending.append((topic, payload, now_ms))
        if len(pending) >= self._max_batch:
            self._flush()
            if self._pending:
                self._room.clear()
        elif not self._flush_scheduled:
            self._schedule()

    def _schedule(self) -> None:
        self._flush_scheduled = True
        loop = asyncio.get_running_loop()
        wait_s = self._sent_s + self._gap_s - loop.time()
        if wait_s > 0:
            loop.call_later(wait_s, self._flush)
        else:
            loop.call_soon(self._flush)  # after the caller's read drained what its client had queued

    @property
    def full(self) -> bool:
        """Whether ``put``'s caller must ``await room()`` before the next message."""
        return not self._room.is_set()

    async def room(self) -> None:
        """Until the pending batch went to the worker."""
        await self._room.wait()

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, inflight = self._pending, len(self._inflight)
        if not pending or inflight >= self._window or self._writer is None:
            return
        small = len(pending) < _MIN_PIPELINED
        if small and inflight:
            return  # goes with the next answer
        now_s = asyncio.get_running_loop().time()
        if small and now_s - self._sent_s < self._gap_s:
            self._schedule()
            return
        batch, self._pending = pending, []
        self._sent_s = now_s
        self._inflight.append((time.monotonic(), len(batch)))
        self._write(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
        self._room.set()

    def _check_hung(self) -> None:
        # hung: a batch waits for its answer and the worker has said nothing since it was sent; answers
        # waiting while we publish (a slow consumer holds the broker) are the hub's delay, not the worker's
        inflight, pipe = self._inflight, self._pipe
        if inflight and not pipe.frames:
            silent_s = time.monotonic() - max(inflight[0][0], pipe.heard_s)
            if silent_s >= self.hang_s:
                self._hung = f"hung: no answer for {silent_s:.1f} s (host.worker_hang_s)"
                pipe.ready.set()
                return
        self._watch = asyncio.get_running_loop().call_later(_WATCH_S, self._check_hung)

    async def run(self, send: Callable[[Sequence[Message]], Awaitable[None]]) -> None:
        """Publish the worker's answers in order with ``send``; restart a worker that dies or hangs. Until cancelled."""
        while True:
            try:
                await self._answers(send)
            except _WorkerLost as lost:
                await self._restart(str(lost))

    async def _answers(self, send: Callable[[Sequence[Message]], Awaitable[None]]) -> None:
        while True:
            result = await self._next_result()
            self._take_state(result)  # counted and logged as handled, before the publish, as inline
            if result.timed:
                self._keep_statuses(result.timed)
                await send([Message(*args) for args in result.timed])
            if result.out is not None:
                self._inflight.popleft()
                self._backoff.succeeded()
                if result.out:
                    if result.state is not None:  # the worker answers a batch that made a status with its state
                        self._keep_statuses(result.out)
                    await send([Message(*args) for args in result.out])
                self._flush()

    def _keep_statuses(self, republishes: list[Republish]) -> None:
        """Keep the node statuses in ``republishes``, the last per topic (~60 ns a republish)."""
        prefix = self._status_prefix
        self._statuses.update({r[0]: r[1] for r in republishes if r[0].startswith(prefix) and r[3]})

    def _take_state(self, result: Result) -> None:
        mirror = self.mirror
        mirror.count(result.counts)
        if result.state is not None:
            mirror.update(result.state)
        if result.logs:
            for name, level, text in result.logs:
                logging.getLogger(name).log(level, "%s", text)

    async def _next_result(self) -> Result:
        pipe = self._pipe
        while not pipe.frames:
            if self._hung is not None:
                raise _WorkerLost(self._hung)
            pipe.ready.clear()
            await pipe.ready.wait()
        frame = pipe.frames.popleft()
        if frame is None:
            code = await self._exit_code()
            raise _WorkerLost(f"died (exit code {code})")
        result: Result = pickle.loads(frame)  # noqa: S301  (our own worker's bytes)
        return result

    async def _exit_code(self) -> int | None:
        process = self._process
        if process is None:
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await process.wait()
        return process.returncode

    async def _restart(self, what: str) -> None:
        lost = sum(n for _, n in self._inflight)
        pid = self.pid
        await self._stop(kill=True)
        delay = self._backoff.failed()
        log.error(
            "Sparkplug host worker (pid %s) %s: %d unanswered messages lost; starting a new one in %.1f s,"
            " whose core asks each edge node for a rebirth",
            pid,
            what,
            lost,
            delay,
        )
        self.mirror.restarted(lost)
        self._inflight.clear()
        # the new core is seeded with the stale marks of the statuses published last (the broker's retained ones)
        self._config = dataclasses.replace(self._config, seeds=tuple(self._statuses.items()))
        while True:
            await asyncio.sleep(delay)
            try:
                await self.start()
            except HostWorkerError as exc:
                delay = self._backoff.failed()
                log.error(
                    "Sparkplug host worker (pid %s) %s while starting: trying again in %.1f s",
                    exc.pid,
                    exc.reason,
                    delay,
                )
            else:
                break
        self._flush()

    async def _stop(self, *, kill: bool) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        for transport in (self._writer, self._reader):
            if transport is not None:
                transport.close()  # the worker reads end-of-file and exits
        self._writer = self._reader = None
        process, self._process = self._process, None
        if process is None:
            return
        if kill:
            _kill(process)
        try:
            async with asyncio.timeout(_STOP_S):
                await process.wait()
        except TimeoutError:
            log.warning("Sparkplug host worker (pid %s) did not stop within %.0f s: killed", process.pid, _STOP_S)
            _kill(process)
            await process.wait()  # reaped: SIGKILL cannot be refused

    async def close(self) -> None:
        """Stop the worker: its input closes and it exits (killed if it has not within 2 s).

        The messages it has not answered, sent or pending, are lost: counted in the mirror's ``messages_lost``.
        """
        await self._stop(kill=False)
        lost = self.backlog  # the batches in flight and the pending one: their answers will not come
        self._pending = []
        self._inflight.clear()
        if lost:
            self.mirror.lost(lost)
            log.info("Sparkplug host worker stopped with %d messages unanswered: lost (counted)", lost)
