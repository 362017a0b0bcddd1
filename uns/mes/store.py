"""Store validated MES events in the typed ``mes_*`` tables, once each, after the checks that need other events.

Runs on the store's one writer thread (uns.store.writer) with the read-write connection; one transaction per ``apply``.

Idempotency: every event gets an ``event_key`` (8-byte blake2b of the topic and the body's
``event_id``, else of the topic and the raw body). A key already stored is a duplicate and is
skipped, so re-deliveries and replays land once.

Cross-event checks (a failure is a rejection naming the field, kept in ``mes_dead_letters``):

- an ``order_id`` no work order released (counts, labor, consumption, lots, inspections that name
  one, and work order start/complete);
- a work order ``start`` at an instant another order ran on the line (by timestamps, so an ERP may
  post an earlier order's start and complete after the next order began), or of an order already
  running or completed; a ``complete`` of an order already completed, or stamped before its start.

A count, labor, consumption or lot event without ``order_id`` gets the order that ran on its line
at the event's own ``timestamp_ms`` (``uns.mes.attribution``), not at its arrival, and is stored
with ``order_given = false``; a late work order ``start`` or ``complete`` re-attributes those rows
(``uns.mes.reattribute``). The orders' state lives in memory and is rebuilt from
``mes_work_orders`` on start, so a restart changes nothing.

After each commit the store tells ``changes`` (``uns.mes.changes.ChangeFeed``) which paths and
stretches of time the batch changed: the hook for caches of derived numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Literal

import duckdb
import orjson
import pyarrow as pa

from model.config import MesSection
from model.mes import (
    EVENT_MODELS,
    DowntimeReason,
    Inspection,
    Labor,
    LotProduction,
    MachineState,
    MaintenanceOrder,
    MaterialConsumption,
    MesEvent,
    OrderAction,
    ProductionCount,
    ProductType,
    Shift,
    WorkOrder,
)
from uns.clock import at_epoch_ms
from uns.errors import EventRejected, StoreError
from uns.mes.attribution import OrderRuns, Run
from uns.mes.changes import Change, ChangeFeed
from uns.mes.intervals import LATEST_SHIFT
from uns.mes.maintenance_store import EVENT as MAINTENANCE_EVENT
from uns.mes.maintenance_store import TABLE as MAINTENANCE_TABLE
from uns.mes.maintenance_store import maintenance_changes, maintenance_row
from uns.mes.paths import line_of
from uns.mes.reattribute import ORDER_FILLED_TABLES, reattribute
from uns.mes.refusals import DeadLetterRow
from uns.store.database import ARROW_ROWS, insert_arrow

__all__ = ["Incoming", "MesStore", "Outcome", "event_key"]

log = logging.getLogger(__name__)

_DEAD_BODY_CHARS = 4000
"""How much of a rejected body the dead-letter table keeps."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Incoming:
    """One validated MES event on its way into the tables."""

    topic: str
    path: str
    """Equipment path from the topic (the part before ``/mes/``)."""
    event: str
    """Event name after ``mes/``, a key of ``model.mes.EVENT_MODELS``."""
    body: MesEvent
    received_ms: int
    raw: bytes


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What ``apply`` did with one event: stored, duplicate (already stored) or rejected (field, reason)."""

    status: Literal["stored", "duplicate", "rejected"]
    event_key: int
    field: str | None = None
    reason: str | None = None
    order_id: str | None = None
    """The order the event was stored under (given, or the order running on its line at its timestamp)."""


def event_key(topic: str, body: MesEvent, raw: bytes) -> int:
    """The idempotency key: blake2b-64 of topic and ``event_id``, else of topic and the raw body."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(topic.encode())
    digest.update(b"\x00")
    digest.update(body.event_id.encode() if body.event_id is not None else raw)
    return int.from_bytes(digest.digest(), "big")


@dataclasses.dataclass(slots=True)
class _Order:
    line: str
    status: Literal["released", "running", "completed"]


_TABLES: dict[str, str] = {
    "work_order": "mes_work_orders",
    "product_type": "mes_products",
    "shift": "mes_shifts",
    "production_count": "mes_counts",
    "machine_state": "mes_states",
    "downtime_reason": "mes_reasons",
    "quality_inspection": "mes_inspections",
    "labor": "mes_labor",
    "material_consumption": "mes_consumption",
    "lot_production": "mes_lots",
    MAINTENANCE_EVENT: MAINTENANCE_TABLE,
}
_COMMON = ("event_key", "path", "line", "ts", "source", "received")
_LOT_INPUTS = "mes_lot_inputs"
_LOT_INPUT_COLUMNS = ("event_key", "lot_id", "input_lot_id", "material_id", "quantity")
_DEAD_LETTERS = "mes_dead_letters"
_DEAD_LETTER_COLUMNS = ("received", "topic", "event", "field", "reason", "body")
_Rows = dict[tuple[str, tuple[str, ...]], list[list[object]]]
"""Rows to insert, by table and column names (one Arrow insert each)."""


class MesStore:
    """Writes MES events into the typed tables; keeps released and running orders in memory.

    Args:
        connection: the historian's read-write connection (use from its writer thread only).
        section: the MES settings.
        changes: told after each commit what it changed (a new feed when None).
    """

    def __init__(
        self, connection: duckdb.DuckDBPyConnection, section: MesSection, *, changes: ChangeFeed | None = None
    ) -> None:
        self._connection = connection
        self._section = section
        self._orders: dict[str, _Order] = {}
        self._runs = OrderRuns()
        self.changes = changes if changes is not None else ChangeFeed()
        """Subscribe here to hear what each committed batch changed (``uns.mes.changes``)."""
        self._load()

    @property
    def running(self) -> dict[str, str]:
        """Line → the order running on it: of the orders started and not completed, the latest started."""
        return self._runs.running()

    def _load(self) -> None:
        """Rebuild the order state from the table: released, running (started, not completed), completed."""
        rows = self._connection.execute(
            """SELECT order_id,
                      bool_or(action = 'complete') AS done,
                      arg_max(line, ts) FILTER (WHERE action = 'start') AS run_line,
                      max(ts) FILTER (WHERE action = 'start') AS started,
                      arg_max(line, ts) FILTER (WHERE action = 'release') AS planned_line,
                      arg_min(line, ts) FILTER (WHERE action = 'start') AS first_line,
                      epoch_ms(min(ts) FILTER (WHERE action = 'start')) AS first_start,
                      epoch_ms(min(ts) FILTER (WHERE action = 'complete')) AS first_end
               FROM mes_work_orders GROUP BY order_id ORDER BY started NULLS FIRST"""
        ).fetchall()
        self._orders.clear()
        runs: list[Run] = []
        for order_id, done, run_line, started, planned_line, first_line, first_start, first_end in rows:
            if first_start is not None:
                end = None if first_end is None else int(first_end)
                runs.append(Run(order_id, first_line, int(first_start), end))
            line = run_line or planned_line or ""
            if done:
                self._orders[order_id] = _Order(line, "completed")
            elif started is not None:
                self._orders[order_id] = _Order(line, "running")
            else:
                self._orders[order_id] = _Order(line, "released")
        self._runs.load(runs)
        log.debug("mes store: %d orders known, %d running", len(self._orders), len(self._runs.running()))

    def apply(
        self, items: Sequence[Incoming], *, also: Callable[[duckdb.DuckDBPyConnection], None] | None = None
    ) -> list[Outcome]:
        """Check and store a batch in one transaction; returns one outcome per item, in order.

        ``also`` runs inside the same transaction before the commit: the adapter saves the counter
        baselines its derived counts came from, so a crash can neither lose nor double them.

        Raises:
            StoreError: the database failed; the whole batch was rolled back (nothing of it is stored).
        """
        if not items:
            if also is not None:
                also(self._connection)
            return []
        outcomes: list[Outcome] = []
        changes: list[Change] = []
        connection = self._connection
        connection.execute("BEGIN TRANSACTION")
        try:
            batch_keys = self._stored_keys(items)  # one lookup per table, not one per event
            rows: _Rows = {}
            for item in items:
                outcomes.append(self._apply_one(item, batch_keys, rows))
            for (table, names), values in rows.items():
                self._insert(table, names, values)
            changes = self._changed(items, outcomes)
            if also is not None:
                also(connection)
            connection.execute("COMMIT")
        except BaseException as exc:
            connection.execute("ROLLBACK")
            self._load()  # the in-memory order state may hold effects of the rolled-back batch
            if isinstance(exc, duckdb.Error):
                raise StoreError("mes", f"storing {len(items)} MES events failed: {exc}") from exc
            raise
        rejected = sum(1 for outcome in outcomes if outcome.status == "rejected")
        if rejected:  # each is logged by the adapter, rate-limited per topic and field
            log.debug("mes store: %d of %d events rejected", rejected, len(items))
        self.changes.publish(changes)
        return outcomes

    def _changed(self, items: Sequence[Incoming], outcomes: Sequence[Outcome]) -> list[Change]:
        """What the stored events change, after re-attributing rows behind a late start or complete."""
        changes: list[Change] = []
        moved_since: dict[str, int] = {}
        maintained: set[str] = set()
        shifts: list[tuple[str, str, int]] = []
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome.status != "stored":
                continue
            body = item.body
            if isinstance(body, MaintenanceOrder):  # all its versions' paths and times: read once per batch below
                maintained.add(body.maintenance_id)
                continue
            if isinstance(body, Shift):  # and the span of the version it replaces: read once per batch below
                shifts.append((item.path, body.shift_id, outcome.event_key))
            changes.append(_change_of(item))
            if isinstance(body, WorkOrder) and body.action is not OrderAction.release:
                line = line_of(item.path)
                moved_since[line] = min(body.timestamp_ms, moved_since.get(line, body.timestamp_ms))
        for line, since_ms in moved_since.items():
            changes.extend(reattribute(self._connection, self._runs, line, since_ms))
        changes.extend(maintenance_changes(self._connection, maintained))
        changes.extend(_replaced_shifts(self._connection, shifts))
        return changes

    def dead_letters(self, rows: Sequence[DeadLetterRow]) -> None:
        """Keep refused events in ``mes_dead_letters``: one insert for the whole batch, not one per row."""
        if rows:
            values: list[list[object]] = [[at_epoch_ms(ms), *rest] for ms, *rest in rows]
            self._insert(_DEAD_LETTERS, _DEAD_LETTER_COLUMNS, values)

    def _stored_keys(self, items: Sequence[Incoming]) -> set[int]:
        """The keys of ``items`` already in their tables."""
        by_table: dict[str, list[int]] = {}
        for item in items:
            table = _TABLES.get(item.event)
            if table is not None:
                by_table.setdefault(table, []).append(event_key(item.topic, item.body, item.raw))
        found: set[int] = set()
        for table, keys in by_table.items():
            rows = self._connection.execute(
                f"SELECT event_key FROM {table} WHERE event_key IN (SELECT unnest(?::UBIGINT[]))",  # noqa: S608 - fixed map
                [keys],
            ).fetchall()
            found.update(int(key) for (key,) in rows)
        return found

    def _insert(self, table: str, names: tuple[str, ...], values: list[list[object]]) -> None:
        """One Arrow insert of many rows (row-by-row inserts managed ~800 events/s)."""
        columns = list(zip(*values, strict=True))
        arrays = {
            name: pa.array(column, pa.uint64()) if name == "event_key" else pa.array(column)
            for name, column in zip(names, columns, strict=True)
        }
        listed = ", ".join(names)
        insert = f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {ARROW_ROWS}"  # noqa: S608 - fixed names
        insert_arrow(self._connection, pa.table(arrays), insert)

    def _apply_one(self, item: Incoming, batch_keys: set[int], rows: _Rows) -> Outcome:
        key = event_key(item.topic, item.body, item.raw)
        table = _TABLES.get(item.event)
        if table is None or not isinstance(item.body, EVENT_MODELS[item.event]):
            reason = f"unknown MES event {item.event!r}" if table is None else "body does not match the event"
            return self._reject(item, key, EventRejected(item.topic, "event", reason), rows)
        assert table is not None  # noqa: S101 - narrowed above
        if key in batch_keys:  # stored before (looked up once per batch) or earlier in this batch
            return Outcome(status="duplicate", event_key=key)
        try:
            order_id = self._check(item)
        except EventRejected as exc:
            return self._reject(item, key, exc, rows)
        columns, values = self._row(item, order_id)
        if item.event in ORDER_FILLED_TABLES:
            columns, values = (*columns, "order_given"), [*values, getattr(item.body, "order_id", None) is not None]
        common = [key, item.path, line_of(item.path), at_epoch_ms(item.body.timestamp_ms), item.body.source]
        common.append(at_epoch_ms(item.received_ms))
        rows.setdefault((table, (*_COMMON, *columns)), []).append([*common, *values])
        if isinstance(item.body, LotProduction):
            for lot in item.body.input_lots:
                rows.setdefault((_LOT_INPUTS, _LOT_INPUT_COLUMNS), []).append(
                    [key, item.body.lot_id, lot.lot_id, lot.material_id, lot.quantity]
                )
        batch_keys.add(key)
        if isinstance(item.body, WorkOrder):
            self._advance(item.body, line_of(item.path))
        return Outcome(status="stored", event_key=key, order_id=order_id)

    def _reject(self, item: Incoming, key: int, exc: EventRejected, rows: _Rows) -> Outcome:
        # inserted with the batch's rows (one statement); the adapter logs and announces it, rate-limited
        body = item.raw.decode("utf-8", "replace")[:_DEAD_BODY_CHARS]
        values: list[object] = [at_epoch_ms(item.received_ms), item.topic, item.event, exc.field, exc.reason, body]
        rows.setdefault((_DEAD_LETTERS, _DEAD_LETTER_COLUMNS), []).append(values)
        return Outcome(status="rejected", event_key=key, field=exc.field, reason=exc.reason)

    def _known(self, item: Incoming, order_id: str) -> _Order:
        order = self._orders.get(order_id)
        if order is None:
            raise EventRejected(item.topic, "order_id", f"unknown order {order_id!r}: no work_order released it")
        return order

    def _check(self, item: Incoming) -> str | None:
        """Cross-event checks; returns the order id to store (given or filled in), raises ``EventRejected``."""
        body = item.body
        line = line_of(item.path)
        if isinstance(body, WorkOrder):
            if body.action is OrderAction.release:
                return body.order_id
            order = self._known(item, body.order_id)
            if order.status == "completed":
                raise EventRejected(item.topic, "order_id", f"order {body.order_id!r} is already completed")
            if body.action is OrderAction.start:
                if order.status == "running":
                    raise EventRejected(
                        item.topic, "order_id", f"order {body.order_id!r} is already running on {order.line}"
                    )
                other = self._runs.at(line, body.timestamp_ms)  # by time: a backfilled earlier order may start
                if other is not None:
                    when = at_epoch_ms(body.timestamp_ms).isoformat()
                    raise EventRejected(
                        item.topic, "order_id", f"line {line} was running order {other!r} at {when}: complete it first"
                    )
            else:
                run = self._runs.run(body.order_id)
                if run is not None and body.timestamp_ms < run.start_ms:
                    started = at_epoch_ms(run.start_ms).isoformat()
                    raise EventRejected(item.topic, "timestamp_ms", f"before the order's start at {started}")
            return body.order_id
        if isinstance(body, Inspection):
            if body.order_id is not None:
                self._known(item, body.order_id)
            return body.order_id
        if isinstance(body, ProductionCount | Labor | MaterialConsumption | LotProduction):
            if body.order_id is not None:
                self._known(item, body.order_id)
                return body.order_id
            return self._runs.at(line, body.timestamp_ms)  # when it happened, not when it arrived
        return None

    def _advance(self, body: WorkOrder, line: str) -> None:
        """Move the in-memory order state after a stored work order event."""
        order = self._orders.get(body.order_id)
        if body.action is OrderAction.release:
            if order is None:
                self._orders[body.order_id] = _Order(line, "released")
            return
        if order is None:  # checked before storing; kept for type narrowing
            return
        if body.action is OrderAction.start:
            order.line, order.status = line, "running"
            self._runs.started(body.order_id, line, body.timestamp_ms)
        else:
            order.status = "completed"
            self._runs.completed(body.order_id, body.timestamp_ms)

    def _row(self, item: Incoming, order_id: str | None) -> tuple[tuple[str, ...], list[object]]:
        """The event's own columns and values for its table."""
        return _ROWS[type(item.body)](item.body, order_id)


_REPLACED_SHIFTS = f"""
SELECT path, epoch_ms(start_ts), epoch_ms(end_ts)
FROM mes_shifts
JOIN (SELECT DISTINCT unnest($paths::VARCHAR[]) AS path, unnest($ids::VARCHAR[]) AS shift_id) b USING (path, shift_id)
WHERE event_key NOT IN (SELECT unnest($keys::UBIGINT[]))
QUALIFY {LATEST_SHIFT}
"""  # noqa: S608 (our SQL, one fixed fragment)
"""The version of each re-sent (path, shift_id) in effect before the batch (stored before it): the latest, as
``uns.mes.intervals`` takes it."""


def _replaced_shifts(connection: duckdb.DuckDBPyConnection, stored: Sequence[tuple[str, str, int]]) -> list[Change]:
    """The span of the version each stored shift replaces: its hours change too (in shift before, not now).

    A shift corrected to end earlier, moved later or re-sent for another day (the same ``shift_id`` at its
    path) leaves hours the old version covered outside every shift; the new version's own span alone would
    leave the facts of those hours stale. One query per batch holding shifts (rare), inside its transaction.
    """
    if not stored:
        return []
    params = {
        "paths": [path for path, _, _ in stored],
        "ids": [shift_id for _, shift_id, _ in stored],
        "keys": [key for _, _, key in stored],
    }
    return [
        Change(event="shift", path=str(path), start_ms=int(start), end_ms=int(end))
        for path, start, end in connection.execute(_REPLACED_SHIFTS, params).fetchall()
    ]


def _change_of(item: Incoming) -> Change:
    """The stretch of derived numbers one stored event changes (``uns.mes.changes``)."""
    body, at = item.body, item.body.timestamp_ms
    start: int | None = at
    end: int | None = at + 1
    if isinstance(body, DowntimeReason | Shift):
        start, end = body.start_ms, body.end_ms
    elif isinstance(body, MachineState) or (isinstance(body, WorkOrder) and body.action is not OrderAction.release):
        end = None  # a state runs until the next one; an order's run from here on
    elif isinstance(body, ProductType):
        start = end = None  # its ideal cycle time applies to every count of the product
    path = line_of(item.path) if isinstance(body, WorkOrder) else item.path
    return Change(event=item.event, path=path, start_ms=start, end_ms=end)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _work_order(body: MesEvent, order_id: str | None) -> tuple[tuple[str, ...], list[object]]:
    assert isinstance(body, WorkOrder)  # noqa: S101 - dispatched by type
    start = None if body.planned_start_ms is None else at_epoch_ms(body.planned_start_ms)
    end = None if body.planned_end_ms is None else at_epoch_ms(body.planned_end_ms)
    bom = _json([item.model_dump() for item in body.bom])
    columns = ("order_id", "action", "product_id", "quantity", "unit", "planned_start", "planned_end", "bom")
    return columns, [body.order_id, body.action.value, body.product_id, body.quantity, body.unit, start, end, bom]


def _product(body: MesEvent, order_id: str | None) -> tuple[tuple[str, ...], list[object]]:
    assert isinstance(body, ProductType)  # noqa: S101 - dispatched by type
    return ("product_id", "name", "ideal_cycle_time_s", "unit"), [
        body.product_id,
        body.name,
        body.ideal_cycle_time_s,
        body.unit,
    ]


def _shift(body: MesEvent, order_id: str | None) -> tuple[tuple[str, ...], list[object]]:
    assert isinstance(body, Shift)  # noqa: S101 - dispatched by type
    breaks = _json([item.model_dump() for item in body.breaks])
    return ("shift_id", "name", "start_ts", "end_ts", "breaks"), [
        body.shift_id,
        body.name,
        at_epoch_ms(body.start_ms),
        at_epoch_ms(body.end_ms),
        breaks,
    ]


def _count(body: MesEvent, order_id: str | None) -> tuple[tuple[str, ...], list[object]]:
    assert isinstance(body, ProductionCount)  # noqa: S101 - dispatched by type
    start = None if body.period_start_ms is None else at_epoch_ms(body.period_start_ms)
    columns = ("total", "scrap", "good", "order_id", "period_start", "cycle_time_s")
    return columns, [body.total, body.scrap, body.good, order_id, start, body.cycle_time_s]


def _state(body: MesEvent, order_id: str | None) -> tuple[tuple[str, ...], list[object]]:
    assert isinstance(body, MachineState)  # noqa: S101 - dispatched by type
    return ("state", "reason_code"), [body.state, body.reason_code]


def _reason(body: MesEvent, order_id: str | None) -> tuple[tuple[str, ...], list[object]]:
    assert isinstance(body, DowntimeReason)  # noqa: S101 - dispatched by type
    columns = ("start_ts", "end_ts", "reason_code", "state", "operator_id", "comment")
    values: list[object] = [at_epoch_ms(body.start_ms), at_epoch_ms(body.end_ms), body.reason_code, body.state]
    return columns, [*values, body.operator_id, body.comment]


def _inspection(body: MesEvent, order_id: str | None) -> tuple[tuple[str, ...], list[object]]:
    assert isinstance(body, Inspection)  # noqa: S101 - dispatched by type
    columns = (
        "characteristic",
        "value",
        "lower_limit",
        "upper_limit",
        "target",
        "unit",
        "result",
        "defect_type",
        "severity",
        "order_id",
        "lot_id",
        "sample_id",
    )
    severity = None if body.severity is None else body.severity.value
    return columns, [
        body.characteristic,
        body.value,
        body.lower_limit,
        body.upper_limit,
        body.target,
        body.unit,
        body.outcome.value,
        body.defect_type,
        severity,
        order_id,
        body.lot_id,
        body.sample_id,
    ]


def _labor(body: MesEvent, order_id: str | None) -> tuple[tuple[str, ...], list[object]]:
    assert isinstance(body, Labor)  # noqa: S101 - dispatched by type
    return ("operator_id", "action", "order_id"), [body.operator_id, body.action.value, order_id]


def _consumption(body: MesEvent, order_id: str | None) -> tuple[tuple[str, ...], list[object]]:
    assert isinstance(body, MaterialConsumption)  # noqa: S101 - dispatched by type
    columns = ("material_id", "lot_id", "quantity", "unit", "order_id")
    return columns, [body.material_id, body.lot_id, body.quantity, body.unit, order_id]


def _lot(body: MesEvent, order_id: str | None) -> tuple[tuple[str, ...], list[object]]:
    assert isinstance(body, LotProduction)  # noqa: S101 - dispatched by type
    columns = ("lot_id", "product_id", "quantity", "unit", "order_id")
    return columns, [body.lot_id, body.product_id, body.quantity, body.unit, order_id]


_ROWS: dict[type[MesEvent], Callable[[MesEvent, str | None], tuple[tuple[str, ...], list[object]]]] = {
    WorkOrder: _work_order,
    ProductType: _product,
    Shift: _shift,
    ProductionCount: _count,
    MachineState: _state,
    DowntimeReason: _reason,
    Inspection: _inspection,
    Labor: _labor,
    MaterialConsumption: _consumption,
    LotProduction: _lot,
    MaintenanceOrder: maintenance_row,
}
