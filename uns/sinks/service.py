"""The sink framework's async shell: subscribe, batch, write, and acknowledge only what the target committed.

A sink is a plain MQTT client with a persistent QoS 1 session and manual acknowledgements (the
historian's mechanism, ``uns.connect.ClientFactory(clean_session=False, manual_ack=True)``). Every
message goes through the historian's ``RowParser`` (the one envelope reader) into the historian's
``uns.pending.PendingRows``: the reader stops at ``max_pending_rows`` (the broker then keeps the rest
in the session), the flusher hands a batch to the writer when it is full or ``flush_interval_s``
old, and only after the commit are its messages acknowledged, so a crash or an outage loses nothing: the broker
re-delivers, and the writer's sample identity stores each sample once.

A target that is down (``SinkUnavailable``) is retried with the same batch, with ``uns.backoff``
delays, and reported in the health topic (``database_online: false``, ``write_failures``). A batch the
target refuses (``RowsRefused``) is split in halves down to the refused row, which is dead-lettered
(field ``database``); the rows around it are stored. When the target names the refused rows
(``RowsRefused.rows``: InfluxDB 3's line numbers) those are dead-lettered at once and the rest written again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

import orjson

from model.sinks import SinkBase
from uns.backoff import Backoff
from uns.clock import now_ms
from uns.connect import ClientFactory
from uns.errors import RowsRefused, SinkUnavailable
from uns.health import publish_health
from uns.historian.rows import Rejected, RowParser, SampleRow, envelope_of
from uns.historian.stats import StoreStats
from uns.historian.store import Batch
from uns.logs import RateLimitedLog
from uns.mqtt.types import Message, PubSub
from uns.pending import PendingRows
from uns.sinks.writer import SinkWriter, WriteReport

__all__ = ["Sink", "SinkStats", "sink_filters"]

log = logging.getLogger(__name__)

_FINAL_WRITE_S = 5.0  # on stop, one bounded try: what is not committed is re-delivered anyway


def sink_filters(config: SinkBase, enterprise: str) -> list[str]:
    """The filters the sink subscribes to: its topics (default ``<enterprise>/#``), shared when grouped."""
    filters = list(config.topics) or [f"{enterprise}/#"]
    if config.shared_group:
        return [f"$share/{config.shared_group}/{f}" for f in filters]
    return filters


class SinkStats(StoreStats):
    """A store's counters (``StoreStats``) and the state of the sink's link to its target."""

    def __init__(self) -> None:
        super().__init__()
        self.write_failures = 0
        self.database_online = False
        self.last_error: str | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready counters and link state."""
        return {
            "database_online": self.database_online,
            **super().as_dict(),
            "write_failures": self.write_failures,
            "last_error": self.last_error,
        }


class Sink:
    """Stores the UNS in a target through a ``SinkWriter``, acknowledging each message after its commit.

    Args:
        config: the sink's config (``model.sinks``).
        writer: the target.
        enterprise: the plant's enterprise id (default filter ``<enterprise>/#``, the health topic).
        clients: opens the MQTT client (a persistent QoS 1 session over a socket; in-process under ``uns up``).
    """

    def __init__(self, *, config: SinkBase, writer: SinkWriter, enterprise: str, clients: ClientFactory) -> None:
        self.config = config
        self.name = f"sink.{config.name}"
        self.writer = writer
        self.stats = SinkStats()
        self._enterprise = enterprise
        self._clients = clients
        self._parser = RowParser(max_future_ms=int(config.max_future_s * 1000))
        self._backoff = Backoff(min_s=config.retry_min_s, max_s=max(config.retry_min_s, config.retry_max_s))
        self._warn = RateLimitedLog(log)
        self._client: PubSub | None = None
        self._stack = contextlib.AsyncExitStack()
        self._pending = PendingRows(
            batch_rows=config.batch_rows,
            flush_interval_s=config.flush_interval_s,
            max_pending_rows=config.max_pending_rows,
        )

    @property
    def health_topic(self) -> str:
        """``<enterprise>/hub/sinks/<name>/health`` (retained)."""
        return f"{self._enterprise}/hub/sinks/{self.config.name}/health"

    @property
    def filters(self) -> list[str]:
        """What the sink subscribes to."""
        return sink_filters(self.config, self._enterprise)

    async def __aenter__(self) -> Self:
        will = Message(self.health_topic, orjson.dumps({"online": False, "sink": self.config.name}), 1, True)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.writer.aclose)
            client = await stack.enter_async_context(
                self._clients(
                    client_id=self.config.mqtt_client_id,
                    will=will,
                    clean_session=False,
                    manual_ack=True,
                    keepalive_s=30.0,
                )
            )
            await client.subscribe(self.filters, qos=1)
            self._client = client
            self._stack = stack.pop_all()
        log.info("sink %s to %s: subscribed to %s", self.config.name, self.writer.target, ", ".join(self.filters))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._pending and self.stats.database_online:
                async with asyncio.timeout(_FINAL_WRITE_S):
                    await self._flush(retry=False)
        except Exception as problem:  # the broker re-delivers whatever was not acknowledged
            log.warning("sink %s: final write not done (%s); the broker re-delivers it", self.config.name, problem)
        finally:
            self._client = None
            await self._stack.__aexit__(exc_type, exc, tb)
        log.info("sink %s stopped: %s", self.config.name, self.stats.as_dict())

    async def run(self) -> None:
        """Read, batch and write until cancelled."""
        client = self._client
        if client is None:
            raise RuntimeError("Sink.run() needs `async with sink:` first")
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._connect_loop(), name=f"uns.{self.name}.connect")
            tasks.create_task(self._read(client), name=f"uns.{self.name}.read")
            tasks.create_task(self._flush_loop(), name=f"uns.{self.name}.flush")
            tasks.create_task(
                publish_health(client, self.health_topic, self.health, interval_s=self.config.health_interval_s),
                name=f"uns.{self.name}.health",
            )

    def health(self) -> dict[str, object]:
        """Counters, target and backlog, for the health topic and ``/api/health``."""
        return {
            "sink": self.config.name,
            "target": self.writer.target,
            "pending_rows": len(self._pending) + self._pending.writing,
            **self.stats.as_dict(),
        }

    # -- reading --------------------------------------------------------------------------------

    async def _read(self, client: PubSub) -> None:
        pending = self._pending
        parse = self._parser.parse
        skip_transient = self.config.skip_transient
        async for message in client.messages():
            now = now_ms()
            self.stats.received += 1
            row = parse(message.topic, message.payload, now_ms=now)
            if row is None:  # not history (cmd, the hub's own topics): nothing to keep
                client.ack(message)
                continue
            if skip_transient and row.__class__ is SampleRow and row.transient:
                self.stats.transient_skipped += 1  # live only (Sparkplug is_transient): a store leaves it out
                client.ack(message)
                continue
            pending.add(row, now)
            if isinstance(row, Rejected):
                self._count_reject(row)
            pending.hold(message)
            await pending.wait_room()

    def _count_reject(self, row: Rejected) -> None:
        self.stats.reject(row.field)
        self._warn.warning(
            f"reject:{row.field}",
            "sink %s: dead-lettered %s: %s: %s",
            self.config.name,
            row.topic,
            row.field,
            row.reason,
        )

    # -- writing --------------------------------------------------------------------------------

    async def _connect_loop(self) -> None:
        """Connect the writer at start, retrying with backoff; later reconnects happen in ``_write``."""
        while not self.stats.database_online:
            if await self._try(self.writer.connect):
                return
            await asyncio.sleep(self._backoff.failed())

    async def _try(self, attempt: Callable[[], Awaitable[None]]) -> bool:
        try:
            await attempt()
        except SinkUnavailable as problem:
            self._down(problem)
            return False
        self._up()
        return True

    def _down(self, problem: SinkUnavailable) -> None:
        self.stats.write_failures += 1
        if self.stats.database_online or self.stats.last_error != problem.reason:
            log.warning("sink %s: %s is unavailable, retrying: %s", self.config.name, problem.target, problem.reason)
        self.stats.database_online = False
        self.stats.last_error = problem.reason

    def _up(self) -> None:
        if not self.stats.database_online and self.stats.write_failures:
            log.info("sink %s: %s is back", self.config.name, self.writer.target)
        self.stats.database_online = True
        self._backoff.succeeded()

    async def _flush_loop(self) -> None:
        while True:
            await self._pending.wait_due()
            await self._flush(retry=True)

    async def _flush(self, *, retry: bool) -> None:
        if not self._pending:
            return
        batch, acks = self._pending.take()
        try:
            report = await self._write(batch, retry=retry)
        finally:
            self._pending.done()
        self.stats.add(report)
        client = self._client
        if client is not None:
            for message in acks:
                client.ack(message)

    async def _write(self, batch: Batch, *, retry: bool) -> WriteReport:
        """Commit ``batch``, retrying while the target is down; isolate and dead-letter a refused row."""
        while True:
            try:
                report = await self.writer.write(batch, sink=self.config.name)
            except SinkUnavailable as problem:
                self._down(problem)
                if not retry:
                    raise
                await asyncio.sleep(max(self._backoff.failed(), problem.retry_after_s or 0.0))
                continue
            except RowsRefused as refused:
                self._up()
                return await self._isolate(batch, refused, retry=retry)
            self._up()
            return report

    async def _isolate(self, batch: Batch, refused: RowsRefused, *, retry: bool) -> WriteReport:
        if len(batch) <= 1:
            if batch.rejected and not batch.rejected[0].payload:  # even the bare dead letter is refused
                log.error("sink %s: dead letter of %s not storable: %s", self.config.name, batch.rejected[0].topic,
                          refused.reason)  # fmt: skip
                return WriteReport(inserted=0, duplicates=0)
            dead = _as_dead_letter(batch, refused)
            self._count_reject(dead)
            return await self._write(Batch(rejected=[dead]), retry=retry)
        named = _take_out(batch, refused)
        if named is not None:  # the target said which rows: dead-letter those, write the rest again
            kept, dead_letters = named
            for letter in dead_letters:
                self._count_reject(letter)
            return await self._write(kept, retry=retry)
        self._warn.warning(
            "refused", "sink %s: a batch of %d rows was refused (%s); writing it in halves", self.config.name,
            len(batch), refused.reason,
        )  # fmt: skip
        first, second = batch.halves()
        return await self._write(first, retry=retry) + await self._write(second, retry=retry)


def _take_out(batch: Batch, refused: RowsRefused) -> tuple[Batch, list[Rejected]] | None:
    """``batch`` with the rows ``refused`` names turned into dead letters (at its end, also returned); None if none."""
    named = {index for index in refused.rows if 0 <= index < len(batch)}
    if not named:
        return None
    kept, dead = Batch(), []
    for index, (row, at) in enumerate(zip(batch.samples, batch.received_ms, strict=True)):
        if index in named:
            dead.append(_as_dead_letter(Batch(samples=[row], received_ms=[at]), refused))
        else:
            kept.samples.append(row)
            kept.received_ms.append(at)
    for index, event in enumerate(batch.events, start=len(batch.samples)):
        if index in named:
            dead.append(_as_dead_letter(Batch(events=[event]), refused))
        else:
            kept.events.append(event)
    for index, letter in enumerate(batch.rejected, start=len(batch.samples) + len(batch.events)):
        if index not in named:
            kept.rejected.append(letter)
        elif letter.payload:  # a refused dead letter is kept without its payload; a bare one is given up
            dead.append(_as_dead_letter(Batch(rejected=[letter]), refused))
        else:
            log.error("sink: dead letter of %s not storable: %s", letter.topic, refused.reason)
    kept.rejected.extend(dead)
    return kept, dead


def _as_dead_letter(batch: Batch, refused: RowsRefused) -> Rejected:
    why = f"the database refused it: {refused.reason}" if refused.field == "database" else refused.reason
    if batch.samples:
        row = batch.samples[0]  # the envelope it came in (as the historian keeps one): it reads back as the same sample
        return Rejected(row.topic, refused.field, why, orjson.dumps(envelope_of(row)))
    if batch.events:
        event = batch.events[0]
        return Rejected(event.topic, refused.field, why, event.body.encode())
    reject = batch.rejected[0]
    # a dead letter the database refuses (a NUL in it): keep where and why, drop the payload
    return Rejected(reject.topic, reject.field, f"{reject.reason} (payload not storable: {refused.reason})", b"")
