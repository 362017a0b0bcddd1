"""The MES adapter's async shell: events in (MQTT and HTTP), events derived from machine data, KPIs out.

It is the historian's peer on the store (``uns.store``): its tables (``uns.mes.schema``) live in the same
DuckDB file and it writes through the store's one writer thread (DuckDB allows one writer), so views can
join MES tables and samples. Events from the UNS
are acknowledged only after their batch is committed; refused events go to ``mes_dead_letters`` and
are announced on ``<enterprise>/hub/mes/errors``, in the batch's one writer call and within a bound
per second (:mod:`uns.mes.refusals`), so a flood of invalid events cannot hold the shared writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

import orjson

from model.config import MesSection
from model.envelope import EnvelopeError, JsonValue, Quality, ReadingFields, build_envelope, read_envelope
from model.topic import ClassWord, at_every_depth
from uns.clock import epoch_ms, now_ms, utc_now
from uns.connect import ClientFactory
from uns.mes.baselines import SavedBaselines
from uns.mes.changes import ChangeFeed
from uns.mes.derive import CounterBaseline, DerivedEvent, Deriver
from uns.mes.downtime import CurrentRow, current
from uns.mes.facts import FactBuilder
from uns.mes.intake import Accepted, Refused, errors_topic, read_event, refusal_body
from uns.mes.kpi_memory import KpiMemory
from uns.mes.live import LivePicture
from uns.mes.losses import loss_table
from uns.mes.memo import ViewMemo, attach
from uns.mes.refusals import DEAD_LETTERS_PER_S, DeadLetterRow, Refusals, dead_letter_rows
from uns.mes.silent_outputs import SilentOutputs
from uns.mes.store import Incoming, MesStore, Outcome
from uns.mes.stray_counts import StrayCounts
from uns.mes.unbound import UnboundPaths
from uns.mes.views_api import run_view
from uns.mqtt.types import Message, PubSub
from uns.query.args import Document, Params
from uns.store.writer import Writer

__all__ = ["MesAdapter"]

log = logging.getLogger(__name__)

_DERIVE_SETTLE_MS = 1000
_KPI_NAMES = ("oee", "availability", "performance", "quality")
_FACTS_BUSY_S = 1.0  # between chunks of a backlog: the writer serves samples in between
_FACTS_IDLE_S = 60.0  # then an hour closes every hour: a minute late is soon enough


def _event_filters() -> list[str]:
    """``.../mes/<event>`` at every equipment depth (1 to 5 levels) of every enterprise.

    Other enterprises' events are read to be refused (dead letter, errors topic), not silently missed.
    """
    return list(at_every_depth(ClassWord.mes.value, "+"))


def _sibling(match: str, metric: str) -> str:
    head, _, _ = match.partition("/data/")
    return f"{head}/data/{metric}"


class MesAdapter:
    """MES events in, derived events from machine metrics, views over the store's file.

    Args:
        settings: the ``mes`` section.
        enterprise: the plant's enterprise id.
        clients: opens the MQTT client (in-process under ``uns up``).
        writer: the store's writer thread (its database open), shared with the historian.
        client_id: MQTT client id (a persistent session against an external broker).
        dead_letters_per_s: refused events kept (dead-letter row, announcement) per second; the rest are counted.
        equipment: the plant file's equipment paths: events elsewhere are stored as unbound, views of
            paths that are neither equipment nor have events answer 404; None checks neither.
    """

    name = "mes"

    def __init__(
        self,
        *,
        settings: MesSection,
        enterprise: str,
        clients: ClientFactory,
        writer: Writer,
        client_id: str = "uns-mes",
        dead_letters_per_s: int = DEAD_LETTERS_PER_S,
        equipment: Collection[str] | None = None,
    ) -> None:
        self._settings = settings
        self._enterprise = enterprise
        self._clients = clients
        self._writer = writer
        self._client_id = client_id
        self._deriver = Deriver(settings.derive)
        self.equipment = frozenset(equipment) if equipment is not None else None
        """The plant file's equipment paths (None: unknown, nothing checked)."""
        self.changes = ChangeFeed()
        """What each committed batch changed (``uns.mes.changes``): subscribe here to invalidate caches."""
        self._unbound = UnboundPaths(self.equipment)
        self._stray = StrayCounts(settings.output_cells)
        self._silent = SilentOutputs(settings.output_cells, settings.plant_outputs)
        loss_table(settings)  # a bad loss classification stops the start, naming its field
        self._store: MesStore | None = None
        self._facts: FactBuilder | None = None
        self._baselines = SavedBaselines()
        self._client: PubSub | None = None
        self._stack = contextlib.AsyncExitStack()
        self._pending: list[Incoming] = []
        self._pending_refused: list[Refused] = []
        self._refusals = Refusals(rows_per_s=dead_letters_per_s)
        self._pending_acks: list[Message] = []
        self._wake = asyncio.Event()
        self.counters = {
            "received": 0,
            "stored": 0,
            "duplicates": 0,
            "rejected": 0,
            "dead_letters_dropped": 0,
            "derived": 0,
            "kpi_runs": 0,
            "kpi_published": 0,
        }
        self.memo = ViewMemo()
        """Path sets and per-hour sums the views read in memory (``uns.mes.memo``), kept exact by this adapter."""
        self.live = LivePicture(self._current, max_age_s=settings.kpi_interval_s)
        """The ``current`` view as last computed for the KPIs: what dashboards read."""
        self._kpis = KpiMemory()

    @property
    def errors_topic(self) -> str:
        """``<enterprise>/hub/mes/errors``."""
        return errors_topic(self._enterprise)

    def counted_paths(self) -> frozenset[str]:
        """Every path a production count is stored at (the store's at start, then each stored count).

        The plant page (``/api/plant``) reads it to name each line's output as the views choose it.
        """
        return self._silent.counted()

    def health(self) -> dict[str, object]:
        """Counters for ``/api/health``, the unbound paths events arrived at, and the lines' outputs seen in counts."""
        return {**self.counters, **self._unbound.health(), **self._stray.health(), **self._silent.health()}

    async def __aenter__(self) -> Self:
        database = self._writer.database
        self._store = await self._writer.submit(
            lambda: MesStore(database.connection, self._settings, changes=self.changes)
        )
        memo = self.memo
        facts = await self._writer.submit(lambda: FactBuilder(database.connection, self._settings, memo=memo))
        self.changes.subscribe(facts.changed)  # stale facts go before the events are acknowledged
        self.changes.subscribe(memo.changed)
        self._facts = facts
        stored = await self._writer.submit(lambda: self._baselines.load(database.connection))
        await self._writer.submit(lambda: self._silent.load(database.connection))
        for topic, (value, ts_ms) in stored.items():
            self._deriver.restore(topic, value, ts_ms)
        filters = _event_filters()
        for rule in self._settings.derive:
            filters.append(rule.match)
            if rule.reason_match:
                filters.append(_sibling(rule.match, rule.reason_match))
        async with contextlib.AsyncExitStack() as stack:
            with database.reading("attaching the views' memo") as reader:
                stack.callback(attach(reader, memo))  # the views of this process read through it
            client = await stack.enter_async_context(
                self._clients(client_id=self._client_id, clean_session=False, manual_ack=True)
            )
            await client.subscribe(sorted(set(filters)), qos=1)
            self._client = client
            self._stack = stack.pop_all()
        log.info("MES adapter: %d derive rules, events on %s", len(self._settings.derive), self.errors_topic)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._take_derived(self._deriver.flush(), now_ms())
            await self._commit()
        except Exception:
            log.exception("MES adapter: final commit failed; unacknowledged events come again")
        finally:
            self._client = None
            await self._stack.__aexit__(exc_type, exc, tb)

    async def run(self) -> None:
        """Read, derive, commit and publish KPIs until cancelled."""
        client = self._require_client()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._read(client), name="uns.mes.read")
            tasks.create_task(self._commit_loop(), name="uns.mes.commit")
            tasks.create_task(self._kpi_loop(client), name="uns.mes.kpi")
            tasks.create_task(self._facts_loop(), name="uns.mes.facts")

    # -- HTTP entry -----------------------------------------------------------------------------

    async def submit(self, topic: str, raw: bytes) -> Outcome | Refused:
        """Validate and store one event now (``POST /api/mes/...``); published to the UNS once stored."""
        checked = read_event(topic, raw, enterprise=self._enterprise)
        if checked is None:
            return Refused(topic, None, "topic", "not an MES event topic: <equipment path>/mes/<event>", raw)
        if isinstance(checked, Refused):
            self._pending_refused.append(checked)  # kept with the next batch: one writer call per flush
            self._wake.set()
            return checked
        item = self._incoming(checked, now_ms())
        outcome = (await self._apply([item]))[0]
        client = self._client
        if outcome.status == "stored" and client is not None:
            await client.publish(topic, raw, qos=1)  # every UNS consumer sees it; our own copy is a duplicate
        return outcome

    def view(self, name: str, params: Params, *, now: datetime) -> Document:
        """One MES view (``uns.mes.views_api``) on its own read cursor: what ``GET /api/mes/<name>`` answers.

        Synchronous and thread-safe: run it in a thread. Raises what ``run_view`` raises (``BadArgument``,
        ``UnknownPath``, ``KeyError`` for no such view), and ``StoreError`` when the file fails.
        """
        with self._writer.database.reading(f"the MES view {name}") as cursor:
            return run_view(cursor, self._settings, name, params, now=now, equipment=self.equipment)

    # -- reading --------------------------------------------------------------------------------

    async def _read(self, client: PubSub) -> None:
        async for message in client.messages():
            now = now_ms()
            self.counters["received"] += 1
            if "/mes/" in message.topic:
                checked = read_event(message.topic, message.payload, enterprise=self._enterprise)
                if isinstance(checked, Accepted):
                    self._pending.append(self._incoming(checked, now))
                elif isinstance(checked, Refused):
                    self._pending_refused.append(checked)
            else:
                self._offer_sample(message, now)
            if message.qos:
                self._pending_acks.append(message)
            self._wake.set()

    def _offer_sample(self, message: Message, now_ms: int) -> None:
        # an in-process publisher's reading (Message.decoded) is the one reader's for this JSON: not parsed again
        read: ReadingFields | None = message.decoded
        if read is None:
            try:
                read = read_envelope(message.payload, now_ms=now_ms)
            except EnvelopeError:
                return  # the historian dead-letters it, naming the field
        value, timestamp_ms, quality = read[0], read[1], read[2]
        if not isinstance(value, int | float | bool) and value is not None:
            return  # strings, arrays and objects count nothing here
        derived = self._deriver.offer(message.topic, timestamp_ms, value, quality)
        self._take_derived(derived, now_ms)

    def _take_derived(self, derived: Sequence[DerivedEvent], now_ms: int) -> None:
        for event in derived:
            raw = orjson.dumps({**event.body, "source": "derived"})
            checked = read_event(event.topic, raw, enterprise=self._enterprise)
            if isinstance(checked, Accepted):
                self._pending.append(self._incoming(checked, now_ms))
                self.counters["derived"] += 1
            elif isinstance(checked, Refused):
                log.warning("MES adapter: derived %s refused: %s: %s", event.topic, checked.field, checked.reason)

    @staticmethod
    def _incoming(checked: Accepted, now_ms: int) -> Incoming:
        return Incoming(
            topic=checked.topic,
            path=checked.path,
            event=checked.event,
            body=checked.body,
            received_ms=now_ms,
            raw=checked.raw,
        )

    # -- committing -----------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._settings.commit_interval_s)  # was 0.2 s: the idle demo's writer work
            self._take_derived(self._deriver.flush(before_ms=now_ms() - _DERIVE_SETTLE_MS), now_ms())
            await self._commit()

    async def _commit(self) -> None:
        items, refused, acks = self._pending, self._pending_refused, self._pending_acks
        self._pending, self._pending_refused, self._pending_acks = [], [], []
        # taken with the swap: it matches exactly the derived counts in items; only the moved ones are written
        baselines = self._baselines.moved(self._deriver.state())
        self._wake.clear()
        kept = self._take_refused(refused)
        if items or baselines or kept:
            await self._apply(items, baselines, dead_letter_rows(kept, now_ms()))
            self._baselines.committed(baselines)
            await self._announce(kept)
        client = self._client
        if client is not None:
            for message in acks:
                client.ack(message)

    async def _apply(
        self,
        items: list[Incoming],
        baselines: Mapping[str, CounterBaseline] | None = None,
        dead: Sequence[DeadLetterRow] = (),
    ) -> list[Outcome]:
        store = self._require_store()
        outcomes = await self._writer.submit(lambda: self._apply_on_writer(store, items, baselines, dead))
        refused: list[Refused] = []
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome.status == "stored":
                self.counters["stored"] += 1
                self._unbound.note(item.path, item.topic)
                self._stray.note(item.path, item.event, item.topic)
                self._silent.note(item.path, item.event)
                if item.body.source != "derived":  # operator or system input shows on the next read
                    self.live.invalidate()
            elif outcome.status == "duplicate":
                self.counters["duplicates"] += 1
            else:
                refused.append(Refused(item.topic, item.event, outcome.field or "body", outcome.reason or "", item.raw))
        await self._announce(self._take_refused(refused, stored=True))
        return outcomes

    def _apply_on_writer(
        self,
        store: MesStore,
        items: list[Incoming],
        baselines: Mapping[str, CounterBaseline] | None,
        dead: Sequence[DeadLetterRow],
    ) -> list[Outcome]:
        store.dead_letters(dead)
        save = (lambda connection: self._baselines.save(connection, baselines)) if baselines else None
        return store.apply(items, also=save)

    def _take_refused(self, refused: list[Refused], *, stored: bool = False) -> list[Refused]:
        """Count and log every refusal; those within the bound per second are kept and announced."""
        kept = self._refusals.take(refused, stored=stored)
        self.counters["rejected"] = self._refusals.counted
        self.counters["dead_letters_dropped"] = self._refusals.dropped
        return kept

    async def _announce(self, refused: list[Refused]) -> None:
        client = self._client
        if client is None or not refused:
            return
        now = now_ms()
        await client.publish_many([Message(self.errors_topic, refusal_body(item, now), 0, False) for item in refused])

    # -- KPIs -----------------------------------------------------------------------------------

    async def _kpi_loop(self, client: PubSub) -> None:
        lost: asyncio.Task[str] | None = None
        try:
            while True:
                await asyncio.sleep(self._settings.kpi_interval_s)
                if lost is None or lost.done():  # (re)connected since the last tick: the broker gets every KPI again
                    self._kpis.forget()
                    lost = asyncio.get_running_loop().create_task(client.disconnected(), name="uns.mes.kpi.lost")
                try:
                    as_of, rows = await self.live.refresh()
                except Exception:  # a view failing must not stop intake
                    log.exception("MES adapter: KPI computation failed")
                    continue
                self.counters["kpi_runs"] += 1
                # stamped as of the instant they were computed for, not when they were done: the views agree
                messages = self._kpi_messages(rows, epoch_ms(as_of), self._kpis)
                if messages:
                    await client.publish_many(messages)
                self._kpis.published()
                self.counters["kpi_published"] += len(messages)
        finally:
            if lost is not None:
                lost.cancel()

    async def _facts_loop(self) -> None:
        """Build the per-hour facts of closed hours (``uns.mes.facts``): a week per writer call, then a pause."""
        facts = self._facts
        if facts is None:
            return
        while True:
            try:
                built = await self._writer.submit(lambda: facts.build(utc_now()))
            except Exception:  # the views answer directly without facts; intake goes on
                log.exception("MES adapter: building per-hour facts failed")
                built = 0
            await asyncio.sleep(_FACTS_BUSY_S if built else _FACTS_IDLE_S)

    def _current(self, now: datetime) -> list[CurrentRow]:
        with self._writer.database.reading("the MES view current") as cursor:
            section = self._settings
            return current(
                cursor, section, now=now, output_cells=section.output_cells, plant_outputs=section.plant_outputs
            )

    @staticmethod
    def _kpi_messages(rows: Sequence[CurrentRow], now_ms: int, memory: KpiMemory) -> list[Message]:
        """The KPIs of ``rows`` whose value or quality differs from the last published (report by exception)."""
        out: list[Message] = []
        for row in rows:
            values: dict[str, tuple[JsonValue, str, str | None]] = {
                name: (getattr(row.oee, name), "Double", "ratio") for name in _KPI_NAMES
            }
            values["state"] = (row.state, "Int32", None)
            values["state_name"] = (row.state_name, "String", None)
            values["order"] = (row.order_id, "String", None)
            for name, (value, datatype, unit) in values.items():
                if isinstance(value, float) and not math.isfinite(value):
                    value = None
                quality = Quality.good if value is not None else Quality.uncertain
                topic = f"{row.path}/kpi/{name}"
                if not memory.changed(topic, value, quality):
                    continue
                body = build_envelope(value=value, timestamp_ms=now_ms, quality=quality, datatype=datatype, unit=unit)
                out.append(Message(topic, orjson.dumps(body), 0, True))
        return out

    def _require_client(self) -> PubSub:
        if self._client is None:
            raise RuntimeError("MesAdapter.run() needs `async with adapter:` first")
        return self._client

    def _require_store(self) -> MesStore:
        if self._store is None:
            raise RuntimeError("MesAdapter needs `async with adapter:` first")
        return self._store
