"""The historian's async shell: subscribe to the UNS, batch rows, commit on the writer thread, then ack.

Two tasks share one pending batch (``uns.pending.PendingRows``, the sinks' too). The reader parses
each message into it and stops reading when ``max_pending_rows`` are waiting (the broker then holds
back the publishers). The flusher commits
the pending batch when it reaches ``batch_rows`` or its first row is ``flush_interval_s`` old, on
the single writer thread that owns the DuckDB connection, and only then acknowledges the batch's
QoS 1 messages: a crash before the commit makes the broker re-deliver them, and the store's
de-duplication keeps each sample once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from model.config import HistorianSection
from model.envelope import USABLE_QUALITIES
from uns.clock import at_epoch_ms, now_ms, utc_now
from uns.connect import ClientFactory
from uns.health import publish_health
from uns.historian.compression import Compressor
from uns.historian.retention import apply_retention
from uns.historian.rollups import Rollups
from uns.historian.rows import EventRow, Rejected, RowParser, SampleRow
from uns.historian.stats import StoreStats
from uns.historian.store import Batch, CommitReport, Store
from uns.logs import RateLimitedLog
from uns.mqtt.types import PubSub
from uns.pending import PendingRows
from uns.store.database import Database, database_path
from uns.store.writer import Writer

__all__ = ["Historian"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_REJECT_LOG_EVERY_S = 10.0


class Historian:
    """Stores every UNS ``data``, ``kpi`` and ``mes`` message in DuckDB, but samples flagged ``transient`` (counted).

    Args:
        settings: the historian section.
        enterprise: the plant's enterprise id; the historian subscribes to ``<enterprise>/#``.
        clients: opens the MQTT client (in-process under ``uns up``, a persistent QoS 1 session otherwise).
        data_dir: where the database lives unless ``settings.path`` says otherwise.
    """

    name = "historian"

    def __init__(self, *, settings: HistorianSection, enterprise: str, clients: ClientFactory, data_dir: Path) -> None:
        self._settings = settings
        self._enterprise = enterprise
        self._clients = clients
        self.database = Database(path=database_path(settings, data_dir), memory_limit_mb=settings.memory_limit_mb)
        self.stats = StoreStats()
        self._parser = RowParser(max_future_ms=int(settings.max_future_s * 1000))
        self._compressor: Compressor[SampleRow] | None = (
            Compressor(rules=settings.compression) if settings.compression else None
        )
        self._rollups = Rollups()
        self.writer = Writer(self.database, name="historian-writer")
        """The store's one writer thread; the MES adapter and the alarm history submit their writes here too."""
        self._store: Store | None = None
        self._series_refused = 0
        self._client: PubSub | None = None
        self._stack = contextlib.AsyncExitStack()
        self._pending = PendingRows(
            batch_rows=settings.batch_rows,
            flush_interval_s=settings.flush_interval_s,
            max_pending_rows=settings.max_pending_rows,
        )
        self._reject_log = RateLimitedLog(log, interval_s=_REJECT_LOG_EVERY_S)

    @property
    def health_topic(self) -> str:
        """``<enterprise>/hub/historian/health``."""
        return f"{self._enterprise}/hub/historian/health"

    @property
    def subscription(self) -> str:
        """The one filter the historian subscribes to."""
        return f"{self._enterprise}/#"

    async def on_writer(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` on the writer thread (the only thread that touches the read-write connection)."""
        return await self.writer.submit(work)

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            await self.writer.open()
            stack.push_async_callback(self.writer.close)
            max_series = self._settings.max_series
            self._store = await self.on_writer(lambda: Store(self.database.connection, max_series=max_series))
            client = await stack.enter_async_context(
                self._clients(
                    client_id=self._settings.client_id, clean_session=False, manual_ack=True, keepalive_s=30.0
                )
            )
            await client.subscribe([self.subscription], qos=1)
            self._client = client
            self._stack = stack.pop_all()
        log.info(
            "historian on %s: %d series, subscribed to %s",
            self.database.path,
            self._store.series_count,
            self.subscription,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._compressor is not None:
                now = now_ms()
                for row in self._compressor.flush():  # held swinging-door points are stored, not dropped
                    self._add_row(row, now)
            await self._flush()  # what was received before the stop; unacked messages are re-sent anyway
        except Exception:
            log.exception("historian: final commit failed; the broker re-delivers what was not acknowledged")
        finally:
            self._client = None
            await self._stack.__aexit__(exc_type, exc, tb)
        log.info("historian stopped: %s", self.stats.as_dict())

    async def run(self) -> None:
        """Read, batch and commit until cancelled."""
        client = self._require_client()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._read(client), name="uns.historian.read")
            tasks.create_task(self._flush_loop(), name="uns.historian.flush")
            tasks.create_task(
                publish_health(client, self.health_topic, self.health, interval_s=self._settings.health_interval_s),
                name="uns.historian.health",
            )
            tasks.create_task(self._maintenance_loop(), name="uns.historian.maintenance")

    def health(self) -> dict[str, object]:
        """Counters and the pending backlog, for ``/api/health``."""
        return {
            "database": str(self.database.path),
            "pending_rows": len(self._pending),
            **self.stats.as_dict(),
            "series": self._store.series_count if self._store is not None else 0,
            "series_refused": self._store.series_refused if self._store is not None else 0,
        }

    # -- reading --------------------------------------------------------------------------------

    async def _read(self, client: PubSub) -> None:
        pending = self._pending
        parse = self._parser.parse
        room = self._settings.max_pending_rows
        add = self._add if self._compressor is not None else self._add_row  # one call per row, not two
        async for message in client.messages():
            now = now_ms()
            self.stats.received += 1
            row = parse(message.topic, message.payload, now_ms=now, decoded=message.decoded)
            if row is None:
                client.ack(message)
                continue
            if row.__class__ is SampleRow and row.transient:
                self.stats.transient_skipped += 1  # live only (Sparkplug is_transient): not history, on purpose
                client.ack(message)
                continue
            add(row, now)
            if message.qos:  # QoS 0 (the host republishes so) has nothing to acknowledge: no call per message
                pending.hold(message)
            if len(pending) >= room:  # a coroutine per message only when it may have to wait
                await pending.wait_room()

    def _add(self, row: SampleRow | EventRow | Rejected, now_ms: int) -> None:
        if isinstance(row, SampleRow) and self._compressor is not None:
            numeric = row.value is not None and row.value_text is None and row.quality in USABLE_QUALITIES
            for kept in self._compressor.offer(row.topic, row.ts_ms, row.value if numeric else None, row):
                self._add_row(kept, now_ms)
            return
        self._add_row(row, now_ms)

    def _add_row(self, row: SampleRow | EventRow | Rejected, now_ms: int) -> None:
        self._pending.add(row, now_ms)
        if isinstance(row, Rejected):
            self._count_reject(row)

    def _count_reject(self, row: Rejected) -> None:
        self.stats.reject(row.field)
        # one key for every refusal: a flood of distinct bad topics still logs once per interval
        self._reject_log.warning("reject", "historian: dead-lettered %s: %s: %s", row.topic, row.field, row.reason)

    # -- committing -----------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._pending.wait_due()
            if self._compressor is not None:
                now = now_ms()
                for row in self._compressor.expire(now):
                    self._add_row(row, now)
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch, acks = self._pending.take()
        store = self._require_store()
        try:
            report = await self.on_writer(lambda: self._commit(store, batch))
        finally:
            self._pending.done()
        self.stats.add(report)
        if store.series_refused != self._series_refused:
            # dead-lettered on the writer (uns.historian.store: max_series): counted and logged like the rest
            self._series_refused = store.series_refused
            for row in batch.rejected:
                if row.field == "series":
                    self._count_reject(row)
        client = self._client
        if client is not None:
            for message in acks:
                client.ack(message)
        if report.new_series:
            log.info("historian: %d new series (%d known)", report.new_series, store.series_count)

    def _commit(self, store: Store, batch: Batch) -> CommitReport:
        """On the writer thread: commit, and tell the rollups about samples older than their series' newest."""
        report = store.commit_isolating(batch)
        if report.oldest_late_ms is not None:
            self._rollups.mark_late(at_epoch_ms(report.oldest_late_ms))
        return report

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.maintenance_interval_s)
            try:
                await self.on_writer(self._maintain)
            except Exception:  # a failed run keeps its marks and is retried; ingest must go on
                log.exception("historian maintenance failed; retrying in %.0f s", self._settings.maintenance_interval_s)

    def _maintain(self) -> None:
        """On the writer thread: rollups first (retention never deletes what they still need), then retention."""
        now = utc_now()
        connection = self.database.connection
        self._rollups.run(connection, now=now)
        apply_retention(connection, self._settings, now=now)
        # DuckDB purges its buffer eviction queues only past ~32k nodes each: drop them here (uns.store.database)
        log.debug("historian: %d eviction queue nodes released", self.database.release_memory())

    def _require_client(self) -> PubSub:
        if self._client is None:
            raise RuntimeError("Historian.run() needs `async with historian:` first")
        return self._client

    def _require_store(self) -> Store:
        if self._store is None:
            raise RuntimeError("Historian needs `async with historian:` first")
        return self._store
