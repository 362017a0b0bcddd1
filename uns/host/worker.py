"""The Sparkplug host's core in a child process (``host.worker``): batches in, republishes and state out.

The parent (``uns.host.remote``) sends a ``WorkerConfig``, then batches of ``(topic, payload, now_ms)``
in arrival order; for each batch the worker answers one ``Result``, in order: the republishes as plain
tuples (``Message``'s fields), the counters, the sessions touched (at most every ``STATE_EVERY_S``, and at
once after a birth, a death or a node status made: the parent keeps the statuses it gets with a state, a new
worker's seeds) and the log records of the batch. With no batch for ``STATE_EVERY_S`` it sends what state is
left, and what the core's ``tick`` makes by time alone goes unasked, at once, with every session (``tick``
names none). It ends when its input pipe closes (the parent stopped it, or died).

The parent starts it as ``python -m uns.host.worker <input fd> <output fd>`` (``main``), so the process
imports the host's modules alone, not the hub's.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import signal
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import NamedTuple

from model.envelope import ReadingFields
from model.equipment import Plant
from uns.clock import now_ms
from uns.host.awaited_births import DBIRTH_GRACE_MS
from uns.host.bounds import HostBounds
from uns.host.core import HostCore
from uns.host.feed import Counts, StateFeed, StateSnapshot, counts_of
from uns.host.seeding import StatusDocuments
from uns.mqtt.types import Message

__all__ = ["STATE_EVERY_S", "Batch", "Republish", "Result", "WorkerConfig", "main", "serve"]

STATE_EVERY_S = 0.1
"""Most time a change of a session (seq, last error) waits before the parent's mirror has it."""

Batch = list[tuple[str, bytes, int]]
"""Received messages in arrival order: topic, payload, receive time (ms)."""

Republish = tuple[str, bytes, int, bool, int, ReadingFields | None]
"""``Message(topic, payload, qos, retain, packet_id, decoded)``'s arguments."""


class Result(NamedTuple):
    """The worker's answer: to one batch (``out`` not None, maybe empty), or state alone (``out`` None)."""

    out: list[Republish] | None
    counts: Counts
    state: StateSnapshot | None
    logs: list[tuple[str, int, str]] | None
    timed: list[Republish] | None = None
    """What the core's ``tick`` made while no batch came (rebirths asked after late NBIRTHs): published at once."""


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What the worker's ``HostCore`` is built from (the shell's settings), and how the parent logs."""

    plant: Plant
    max_payload_bytes: int
    rebirth_min_interval_ms: int
    republish_qos: int
    bounds: HostBounds
    hand_decoded: bool
    log_level: int
    dbirth_grace_ms: int = DBIRTH_GRACE_MS
    """``host.dbirth_grace_s``: how long after an NBIRTH with no DATA its node's devices are awaited."""
    seeds: StatusDocuments = ()
    """The host's retained node status documents read at start: their stale marks are seeded (``HostCore.seed``)."""

    def core(self) -> HostCore:
        """The core this describes (the shell's inline one, or the worker's), its stale marks seeded."""
        core = HostCore(
            plant=self.plant,
            max_payload_bytes=self.max_payload_bytes,
            rebirth_min_interval_ms=self.rebirth_min_interval_ms,
            republish_qos=self.republish_qos,
            bounds=self.bounds,
            dbirth_grace_ms=self.dbirth_grace_ms,
        )
        core.hand_decoded = self.hand_decoded
        if self.seeds:
            core.seed(self.seeds, now_ms())
        return core


class _Forward(logging.Handler):
    """Keeps the worker's log records for the next answer: the parent logs them under the same logger names."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))

    def take(self) -> list[tuple[str, int, str]] | None:
        if not self.records:
            return None
        taken, self.records = self.records, []
        return taken


def serve(inbox: Connection, outbox: Connection) -> None:
    """The worker process: build the core from the first message, then answer batches until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent stops us
    config: WorkerConfig = pickle.loads(inbox.recv_bytes())  # noqa: S301  (our own parent's bytes)
    forward = _Forward()
    root = logging.getLogger()
    root.handlers[:] = [forward]
    root.setLevel(config.log_level)
    core = config.core()
    feed = StateFeed(core)
    feed.touch_all()  # the nodes seeded from their retained status: the mirror knows them as the core does
    try:
        _answer(core, feed, forward, inbox, outbox)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the parent closed the pipe, or is gone: nothing is left to do


def _send(outbox: Connection, result: Result) -> None:
    outbox.send_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


def _republish(m: Message) -> Republish:
    return (m.topic, m.payload, m.qos, m.retain, 0, m.decoded)


def _timed(core: HostCore, feed: StateFeed) -> list[Republish]:
    """What the core's ``tick`` has due by now; every session touched if anything (``tick`` names none)."""
    due, at_ms = core.due_ms, now_ms()
    if due is None or due > at_ms:
        return []
    timed = [_republish(m) for m in core.tick(at_ms)]
    if timed:
        feed.touch_all()  # a device given up on, a rebirth asked: the mirror has it with the answer
    return timed


def _answer(core: HostCore, feed: StateFeed, forward: _Forward, inbox: Connection, outbox: Connection) -> None:
    handle, touch = core.handle, feed.touch
    _send(outbox, Result(None, counts_of(core.counters), feed.snapshot(), forward.take()))  # ready
    state_s = time.monotonic()
    while True:
        # a touched session goes at most STATE_EVERY_S after the last state sent, not after the last batch:
        # batches closer than that would each push it back (up to twice STATE_EVERY_S)
        wait_s = max(0.0, state_s + STATE_EVERY_S - time.monotonic()) if feed.dirty else None
        if (due := core.due_ms) is not None:  # what the core's tick has due: no wake-up while nothing is
            due_s = max(0.0, (due - now_ms()) / 1000)
            wait_s = due_s if wait_s is None else min(wait_s, due_s)
        if not inbox.poll(wait_s):
            timed = _timed(core, feed)
            if feed.dirty or timed:
                state_s = time.monotonic()
                _send(outbox, Result(None, counts_of(core.counters), feed.snapshot(), forward.take(), timed or None))
            continue
        batch: Batch = pickle.loads(inbox.recv_bytes())  # noqa: S301  (our own parent's bytes)
        statuses = core.statuses_made
        out = _timed(core, feed)
        urgent = False
        for topic, payload, now in batch:
            for m in handle(topic, payload, now):
                out.append((m.topic, m.payload, m.qos, m.retain, 0, m.decoded))
            touch(topic)
            # a birth or death changes what the web shows at once (and the alias tables it reads)
            urgent = urgent or "BIRTH/" in topic or "DEATH/" in topic
        state = None
        now_s = time.monotonic()
        urgent = urgent or core.statuses_made != statuses  # the parent keeps each status sent with a state
        if urgent or now_s - state_s >= STATE_EVERY_S:
            state, state_s = feed.snapshot(), now_s
        _send(outbox, Result(out, counts_of(core.counters), state, forward.take()))


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m uns.host.worker <input fd> <output fd>``: serve on the two pipe ends the parent passed."""
    inbox_fd, outbox_fd = (int(arg) for arg in (sys.argv[1:] if argv is None else argv))
    serve(Connection(inbox_fd, writable=False), Connection(outbox_fd, readable=False))


if __name__ == "__main__":
    # run as the module uns.host.worker, not as __main__: the parent unpickles our answers' classes by that name
    from uns.host.worker import main as _main

    _main()
