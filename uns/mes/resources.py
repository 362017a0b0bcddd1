"""Resource views over the MES tables: labor hours from clock on/off, and material consumed against the BOM.

Every view is synchronous and read-only: it takes a DuckDB cursor and runs in the caller's thread.
Times going in must carry a time zone; times coming out are in ``tz`` (UTC by default).
``pair_sessions`` is the pure core that turns clock events into work sessions.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

import duckdb
import orjson

from model.written import as_written
from uns.clock import HOUR_US, span_us, utc_now
from uns.errors import BadArgument
from uns.mes.line_output import unit_paths
from uns.mes.paths import subtree_condition
from uns.query.timespec import UTC_ZONE, checked_window, instant, require_aware

__all__ = [
    "ClockEvent",
    "LaborGroup",
    "LaborReport",
    "LaborRow",
    "LotUse",
    "MaterialReport",
    "MaterialRow",
    "Session",
    "labor",
    "material",
    "pair_sessions",
]

log = logging.getLogger(__name__)

LaborGroup = Literal["order", "cell", "operator"]
"""How ``labor`` groups hours."""


# ---------------------------------------------------------------------------------------------
# labor


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClockEvent:
    """One labor event: an operator clocked on or off at a cell."""

    ts: datetime
    path: str
    operator_id: str
    action: str
    """``on`` or ``off``."""
    order_id: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """An operator's time at a cell, from clock-on to clock-off (or to the cut-off when still on)."""

    path: str
    operator_id: str
    order_id: str | None
    """The order named by the clock-on."""
    start: datetime
    end: datetime
    open: bool
    """No clock-off yet: ``end`` is the cut-off."""


def pair_sessions(events: Iterable[ClockEvent], *, cutoff: datetime) -> tuple[list[Session], list[ClockEvent]]:
    """Pair clock-on with clock-off per operator and cell, in time order.

    A second ``on`` while on closes the running session at its instant and opens a new one (the
    operator switched order); an ``off`` with nothing open is returned as unmatched; a session
    still open runs to ``cutoff``.

    Returns:
        the sessions (ordered by start) and the unmatched clock-offs.
    """
    running: dict[tuple[str, str], ClockEvent] = {}
    sessions: list[Session] = []
    unmatched: list[ClockEvent] = []

    def close(on: ClockEvent, end: datetime, *, still_open: bool) -> None:
        sessions.append(
            Session(
                path=on.path, operator_id=on.operator_id, order_id=on.order_id, start=on.ts, end=end, open=still_open
            )
        )

    for event in sorted(events, key=lambda e: (e.ts, e.action != "off")):  # an off before an on at one instant
        key = (event.operator_id, event.path)
        previous = running.pop(key, None)
        if event.action == "on":
            if previous is not None:
                close(previous, event.ts, still_open=False)
            running[key] = event
        elif previous is None:
            unmatched.append(event)
        else:
            close(previous, event.ts, still_open=False)
    for on in running.values():
        close(on, max(cutoff, on.ts), still_open=True)
    sessions.sort(key=lambda s: (s.start, s.operator_id, s.path))
    return sessions, unmatched


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LaborRow:
    """Hours worked in one group (order id, cell path or operator id), clipped to the window."""

    group: str | None
    """None for time worked on no order (``by="order"``)."""
    hours: float
    sessions: int
    """Sessions that overlap the window."""
    operators: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LaborReport:
    """The labor view: hours per group and the clock-offs that had no clock-on."""

    rows: tuple[LaborRow, ...]
    unmatched_offs: tuple[ClockEvent, ...]
    """Clock-offs inside the window with no open clock-on: ignored for hours."""


_LABOR_SQL = """
SELECT epoch_ms(ts), path, operator_id, action, order_id FROM mes_labor
WHERE {where} AND ts < ? ORDER BY ts, event_key
"""


def labor(
    cursor: duckdb.DuckDBPyConnection,
    *,
    path: str,
    start: datetime,
    end: datetime,
    by: LaborGroup = "order",
    now: datetime | None = None,
    tz: ZoneInfo = UTC_ZONE,
) -> LaborReport:
    """Labor hours at ``path`` (and below) inside ``[start, end)``, per order, cell or operator.

    Sessions come from ``pair_sessions`` over every clock event before ``end``; a session still
    open runs to ``min(end, now)``. Each session counts only its part inside the window.

    Raises:
        BadArgument: for an unknown grouping, a naive or empty time range, or an empty path.
    """
    if by not in ("order", "cell", "operator"):
        raise BadArgument("by", f"must be one of order, cell, operator (got {by!r})")
    checked_window(start, end)
    now = require_aware(now, "now") if now is not None else utc_now()
    where, params = subtree_condition("path", path)
    rows = cursor.execute(_LABOR_SQL.format(where=where), [*params, end.astimezone(UTC)]).fetchall()
    events = [
        ClockEvent(ts=instant(ms, tz), path=cell, operator_id=operator, action=action, order_id=order)
        for ms, cell, operator, action, order in rows
    ]
    sessions, unmatched = pair_sessions(events, cutoff=min(end, now))
    # whole microseconds per group, made hours once: summed as float hours, three 6-minute sessions were
    # 0.30000000000000004 h (test_labor_hours_are_summed_in_whole_microseconds)
    micros: dict[str | None, int] = defaultdict(int)
    counts: dict[str | None, int] = defaultdict(int)
    people: dict[str | None, set[str]] = defaultdict(set)
    for session in sessions:
        overlap = span_us(max(session.start, start), min(session.end, end))
        if overlap <= 0:
            continue
        group = {"order": session.order_id, "cell": session.path, "operator": session.operator_id}[by]
        micros[group] += overlap
        counts[group] += 1
        people[group].add(session.operator_id)
    inside = tuple(e for e in unmatched if start <= e.ts < end)
    for event in inside:
        log.debug("labor: clock-off of %s at %s on %s without clock-on", event.operator_id, event.path, event.ts)
    ordered = sorted(micros, key=lambda g: (g is None, g or ""))
    return LaborReport(
        rows=tuple(
            LaborRow(group=g, hours=micros[g] / HOUR_US, sessions=counts[g], operators=tuple(sorted(people[g])))
            for g in ordered
        ),
        unmatched_offs=inside,
    )


# ---------------------------------------------------------------------------------------------
# material against the bill of materials


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LotUse:
    """How much of one lot an order consumed."""

    lot_id: str
    quantity: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MaterialRow:
    """One material of an order: consumed against planned.

    ``planned_*`` are None for a material the BOM does not list (consumed off-plan).
    """

    material_id: str
    unit: str | None
    consumed: float
    planned_for_produced: float | None
    """quantity_per_unit × good units produced so far."""
    planned_for_order: float | None
    """quantity_per_unit × the order's planned quantity."""
    variance: float | None
    """consumed − planned_for_produced (positive: more used than the good output needed)."""
    variance_pct: float | None
    """variance / planned_for_produced; None when nothing good was produced yet."""
    lots: tuple[LotUse, ...]
    """The lots it came from, largest use first."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MaterialReport:
    """The material view of one order."""

    order_id: str
    product_id: str | None
    planned_quantity: float | None
    good_units: int
    """Good units the order's line put out so far (see ``material``)."""
    materials: tuple[MaterialRow, ...]


def _release(cursor: duckdb.DuckDBPyConnection, order_id: str) -> tuple[str | None, float | None, list[object]]:
    row = cursor.execute(
        "SELECT product_id, quantity, bom FROM mes_work_orders WHERE order_id = ? AND action = 'release'"
        " ORDER BY ts DESC, received DESC LIMIT 1",
        [order_id],
    ).fetchone()
    if row is None:
        seen = cursor.execute("SELECT count(*) FROM mes_work_orders WHERE order_id = ?", [order_id]).fetchone()
        if not seen or not seen[0]:
            raise BadArgument("order_id", f"no work order {order_id!r}; released orders are in mes_work_orders")
        return None, None, []
    product, quantity, bom = row
    items = orjson.loads(bom) if bom else []
    return product, quantity, items if isinstance(items, list) else []


_COUNTING = """
SELECT DISTINCT line, path FROM mes_counts WHERE line IN (SELECT DISTINCT line FROM mes_counts WHERE order_id = ?)
"""
"""Every path that ever counted (any order's) on the lines the order counted at: which are a line's output."""

_GOOD_SQL = """
SELECT coalesce(sum(good), 0) FROM mes_counts WHERE order_id = ? AND path IN (SELECT unnest(?::VARCHAR[]))
"""
"""The order's good units at the given paths (its lines' outputs)."""


def _decimal(quantity: object, what: str = "quantity") -> Decimal:
    """A quantity as the decimal it was written as (``model.written.as_written``: 0.1 is 0.1).

    Raises:
        ValueError: naming ``what``, for a stored value that is no finite number (intake refuses one:
            model/mes.py), rather than counting it as 0.
    """
    if isinstance(quantity, bool) or not isinstance(quantity, int | float) or not math.isfinite(quantity):
        raise ValueError(f"{what}: {quantity!r} is no finite number")
    return as_written(float(quantity))


def _float(quantity: Decimal | None) -> float | None:
    return None if quantity is None else float(quantity)


def material(
    cursor: duckdb.DuckDBPyConnection,
    *,
    order_id: str,
    output_cells: Mapping[str, str] | None = None,
    plant_outputs: Mapping[str, str] | None = None,
) -> MaterialReport:
    """Material consumed by an order against its bill of materials (from the latest release).

    Good units produced are those at the output of each line the order counted at, the OEE, orders and
    scrap views' rule (``uns.mes.line_output``): the counts of the setting ``output_cells[line]`` (a cell or
    the line itself); without one, the line path's own counts when it ever published any, else the default
    ``plant_outputs[line]`` (the plant file's last cell), else the line's last cell by path that ever counted,
    of any order.

    Raises:
        BadArgument: when no work order has this id.
    """
    product, planned_qty, bom = _release(cursor, order_id)
    outputs = dict(output_cells or {})
    counting: dict[str, set[str]] = defaultdict(set)
    for line, counted in cursor.execute(_COUNTING, [order_id]).fetchall():
        counting[line].add(counted)
    # good units are the whole-count paths (the output's), the same on a line of mes.output_only_lines
    whole = [
        path
        for line, paths in counting.items()
        for path, is_whole in unit_paths(
            line, paths, outputs, output_only=False, plant_outputs=plant_outputs or {}
        ).items()
        if is_whole
    ]
    good_row = cursor.execute(_GOOD_SQL, [order_id, whole]).fetchone()
    good = int(good_row[0]) if good_row else 0
    # quantities are decimals (kg, l, pieces) and are summed and multiplied as the decimals they were written as:
    # in binary floats 0.4 kg x 7 was 2.8000000000000003 kg (test_material_quantities_are_the_decimals_a_hand_computes)
    used = cursor.execute(
        "SELECT material_id, lot_id, list(quantity), any_value(unit) FROM mes_consumption WHERE order_id = ?"
        " GROUP BY material_id, lot_id",
        [order_id],
    ).fetchall()
    lots: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    units: dict[str, str | None] = {}
    for material_id, lot_id, quantities, unit in sorted(used, key=lambda row: (row[0], row[1])):
        lots[material_id].append((lot_id, sum(map(_decimal, quantities), Decimal(0))))
        units.setdefault(material_id, unit)
    per_unit: dict[str, Decimal] = {}
    for item in bom:
        if isinstance(item, dict) and isinstance(item.get("material_id"), str):
            material_id = item["material_id"]
            per_unit[material_id] = per_unit.get(material_id, Decimal(0)) + _decimal(
                item.get("quantity_per_unit", 0.0),
                f"work order {order_id!r}: bom material {material_id!r}: quantity_per_unit",
            )
            units[material_id] = item.get("unit") or units.get(material_id)
    planned = None if planned_qty is None else _decimal(planned_qty, f"work order {order_id!r}: quantity")
    rows: list[MaterialRow] = []
    for material_id in [*per_unit, *sorted(set(lots) - set(per_unit))]:
        taken = sorted(lots.get(material_id, []), key=lambda use: (-use[1], use[0]))  # largest use first
        consumed = sum((quantity for _, quantity in taken), Decimal(0))
        qpu = per_unit.get(material_id)
        for_produced = qpu * good if qpu is not None else None
        variance = consumed - for_produced if for_produced is not None else None
        rows.append(
            MaterialRow(
                material_id=material_id,
                unit=units.get(material_id),
                consumed=float(consumed),
                planned_for_produced=_float(for_produced),
                planned_for_order=_float(qpu * planned if qpu is not None and planned is not None else None),
                variance=_float(variance),
                variance_pct=float(variance) / float(for_produced) if variance is not None and for_produced else None,
                lots=tuple(LotUse(lot_id=lot_id, quantity=float(quantity)) for lot_id, quantity in taken),
            )
        )
    return MaterialReport(
        order_id=order_id, product_id=product, planned_quantity=planned_qty, good_units=good, materials=tuple(rows)
    )
