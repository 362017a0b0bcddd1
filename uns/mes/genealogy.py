"""Lot genealogy: trace a lot backward (its inputs) or forward (what it went into), and the process values it saw.

``trace`` walks ``mes_lot_inputs`` with one recursive CTE, breadth first with a visited set, so
each lot is reached once at its shortest depth: cycles in bad data and lattices of shared inputs
stay cheap. Edges that close a cycle are reported, not followed. It then fetches each reached
lot's order, cells, inspections and production window. ``process_values`` joins the historian's
samples at the lot's cells over that window, with the as-of value at the lot's creation (DuckDB
ASOF join).

Production window rule: from the start of the lot's order (else the lot event's time) to the
order's completion (else the lot event's time); ``created`` is the lot event's time.

A lot made twice (a unit reworked: a second ``lot_production`` of the same lot at a rework cell,
under a rework order, naming the parts put in) keeps the inputs of both events, so a recall of a
removed part's lot still finds the unit; its node shows the latest event (order, window, ``created``,
as the ``lots`` view does) and every cell it was made at. Its process values read each cell over the
window of the lot's latest event there, so the assembly cell is read over the assembly order.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

import duckdb

from uns.clock import EPOCH
from uns.errors import BadArgument
from uns.query.timespec import UTC_ZONE, instant
from uns.query.values import Value, topic_condition, typed_value

__all__ = [
    "Direction",
    "LotEdge",
    "LotInspection",
    "LotNode",
    "LotTree",
    "ProcessValue",
    "process_values",
    "trace",
]

log = logging.getLogger(__name__)

Direction = Literal["backward", "forward"]
"""backward: what went into the lot; forward: what the lot went into."""

_MAX_DEPTH = 1000

# (from, to) columns of mes_lot_inputs per direction: backward walks produced -> input
_STEP = {"backward": ("lot_id", "input_lot_id"), "forward": ("input_lot_id", "lot_id")}

# breadth first with a visited set (USING KEY + recurring): each lot once, at its shortest depth, so
# neither a cycle nor a lattice of shared inputs (exponentially many paths) can blow the walk up
_WALK_SQL = """
WITH RECURSIVE edges AS (
    SELECT DISTINCT {src} AS src, {dst} AS dst FROM mes_lot_inputs
), walk(lot, depth) USING KEY (lot) AS (
    SELECT ?::VARCHAR, 0
    UNION
    SELECT e.dst, min(w.depth + 1) FROM walk w JOIN edges e ON e.src = w.lot
    WHERE w.depth < ? AND e.dst NOT IN (SELECT lot FROM recurring.walk)
    GROUP BY e.dst
)
SELECT lot, depth FROM walk
"""

_LOT_IN = "lot_id IN (SELECT unnest(?::VARCHAR[]))"


def _instant(epoch_ms: int | None, tz: ZoneInfo) -> datetime | None:
    return None if epoch_ms is None else instant(epoch_ms, tz)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LotEdge:
    """``input_lot_id`` went into ``lot_id`` (whatever the direction of the trace)."""

    lot_id: str
    input_lot_id: str
    material_id: str | None
    quantity: float | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LotInspection:
    """An inspection that named the lot."""

    ts: datetime
    path: str
    characteristic: str
    value: float | None
    result: str
    defect_type: str | None
    severity: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LotNode:
    """One lot reached by a trace, at its shortest distance from the root."""

    lot_id: str
    depth: int
    produced: bool
    """A lot_production event made it (raw material lots often have none)."""
    product_id: str | None
    material_id: str | None
    """Its material number as an input lot or in consumption, when given."""
    quantity: float | None
    unit: str | None
    order_id: str | None
    """The order that made it."""
    created: datetime | None
    """The lot_production event's time."""
    made_from: datetime | None
    made_to: datetime | None
    made_at: tuple[str, ...]
    """Paths of its lot_production events."""
    consumed_at: tuple[str, ...]
    """Paths where it was consumed (material_consumption)."""
    consumed_for: tuple[str, ...]
    """Orders it was consumed for."""
    inspections: tuple[LotInspection, ...]

    @property
    def cells(self) -> tuple[str, ...]:
        """Every path the lot touched: made or consumed there."""
        return tuple(sorted({*self.made_at, *self.consumed_at}))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LotTree:
    """The result of a trace: the reached lots and the input edges between them."""

    root: str
    direction: Direction
    nodes: tuple[LotNode, ...]
    """Root first, then by depth and lot id."""
    edges: tuple[LotEdge, ...]
    cycles: tuple[LotEdge, ...]
    """Edges that lead back to a lot already on the walk (bad data): not followed."""
    truncated: bool
    """Lots at ``max_depth`` have further edges that were not followed."""

    def node(self, lot_id: str) -> LotNode:
        """The reached node of ``lot_id``.

        Raises:
            KeyError: when the trace did not reach it.
        """
        for item in self.nodes:
            if item.lot_id == lot_id:
                return item
        raise KeyError(lot_id)


@dataclasses.dataclass(slots=True)
class _Facts:
    """What the MES tables say about one lot, gathered before the frozen ``LotNode`` is built."""

    product_id: str | None = None
    material_id: str | None = None
    quantity: float | None = None
    unit: str | None = None
    order_id: str | None = None
    created_ms: int | None = None
    made_from_ms: int | None = None
    made_to_ms: int | None = None
    made_at: tuple[str, ...] = ()
    consumed_at: tuple[str, ...] = ()
    consumed_for: tuple[str, ...] = ()
    inspections: list[LotInspection] = dataclasses.field(default_factory=list)

    def node(self, lot: str, depth: int, tz: ZoneInfo) -> LotNode:
        return LotNode(
            lot_id=lot, depth=depth, produced=self.created_ms is not None, product_id=self.product_id,
            material_id=self.material_id, quantity=self.quantity, unit=self.unit, order_id=self.order_id,
            created=_instant(self.created_ms, tz), made_from=_instant(self.made_from_ms, tz),
            made_to=_instant(self.made_to_ms, tz), made_at=self.made_at, consumed_at=self.consumed_at,
            consumed_for=self.consumed_for, inspections=tuple(self.inspections),
        )  # fmt: skip


def _details(cursor: duckdb.DuckDBPyConnection, lots: list[str], tz: ZoneInfo) -> dict[str, _Facts]:
    """Per lot: lot event fields, paths, orders, inspections and production window."""
    info = {lot: _Facts() for lot in lots}
    where = _LOT_IN
    latest = cursor.execute(
        f"SELECT lot_id, product_id, quantity, unit, order_id, epoch_ms(ts) FROM mes_lots WHERE {where}"  # noqa: S608
        " QUALIFY row_number() OVER (PARTITION BY lot_id ORDER BY ts DESC, received DESC) = 1",
        [lots],
    ).fetchall()
    for lot, product, quantity, unit, order, ms in latest:
        facts = info[lot]
        facts.product_id, facts.quantity, facts.unit, facts.order_id, facts.created_ms = (
            product, quantity, unit, order, ms,
        )  # fmt: skip
    made = cursor.execute(
        f"SELECT lot_id, list(DISTINCT path ORDER BY path) FROM mes_lots WHERE {where} GROUP BY lot_id",  # noqa: S608
        [lots],
    ).fetchall()
    for lot, paths in made:
        info[lot].made_at = tuple(paths)
    as_input = cursor.execute(
        "SELECT input_lot_id, any_value(material_id) FROM mes_lot_inputs"
        " WHERE input_lot_id IN (SELECT unnest(?::VARCHAR[])) AND material_id IS NOT NULL GROUP BY input_lot_id",
        [lots],
    ).fetchall()
    for lot, material_id in as_input:
        info[lot].material_id = material_id
    used = cursor.execute(
        "SELECT lot_id, list(DISTINCT path ORDER BY path), list(DISTINCT order_id ORDER BY order_id)"  # noqa: S608
        f" FILTER (order_id IS NOT NULL), any_value(material_id) FROM mes_consumption WHERE {where} GROUP BY lot_id",
        [lots],
    ).fetchall()
    for lot, paths, orders, material_id in used:
        facts = info[lot]
        facts.consumed_at, facts.consumed_for = tuple(paths), tuple(orders or ())
        facts.material_id = facts.material_id or material_id
    for lot, ms, path, characteristic, value, result, defect, severity in cursor.execute(
        "SELECT lot_id, epoch_ms(ts), path, characteristic, value, result, defect_type, severity"  # noqa: S608
        f" FROM mes_inspections WHERE {where} ORDER BY ts, event_key",
        [lots],
    ).fetchall():
        info[lot].inspections.append(
            LotInspection(
                ts=_instant(ms, tz) or EPOCH, path=path, characteristic=characteristic, value=value,
                result=result, defect_type=defect, severity=severity,
            )
        )  # fmt: skip
    span_of = _order_spans(cursor, {facts.order_id for facts in info.values()})
    for facts in info.values():
        facts.made_from_ms, facts.made_to_ms = _window(span_of, facts.order_id, facts.created_ms)
    return info


def _order_spans(
    cursor: duckdb.DuckDBPyConnection, orders: Iterable[str | None]
) -> dict[str, tuple[int | None, int | None]]:
    """Each order's start and completion (epoch ms, None when not sent)."""
    spans = cursor.execute(
        "SELECT order_id, epoch_ms(min(ts) FILTER (action = 'start')), epoch_ms(max(ts) FILTER (action = 'complete'))"
        " FROM mes_work_orders WHERE order_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY order_id",
        [sorted({order for order in orders if order is not None})],
    ).fetchall()
    return {order: (begin, finish) for order, begin, finish in spans}


def _window(
    span_of: dict[str, tuple[int | None, int | None]], order_id: str | None, created_ms: int | None
) -> tuple[int | None, int | None]:
    """The production window rule (module docstring) for a lot event of ``order_id`` at ``created_ms``."""
    begin, finish = span_of.get(order_id, (None, None)) if order_id is not None else (None, None)
    start = begin if begin is not None else created_ms
    end = finish if finish is not None else created_ms
    if start is not None and end is not None and end < start:
        end = start  # an order completed before it started is bad data: keep the window non-negative
    return start, end


def _made_windows(cursor: duckdb.DuckDBPyConnection, lot_id: str) -> list[tuple[str, int, int, int]]:
    """Per path where the lot was made: (path, window start, window end, created), of its latest event there.

    A lot made at two cells (a unit reworked at a rework cell, under a rework order) saw each cell during its
    own production there, not during the latest one.
    """
    latest = cursor.execute(
        "SELECT path, epoch_ms(ts), order_id FROM mes_lots WHERE lot_id = ?"
        " QUALIFY row_number() OVER (PARTITION BY path ORDER BY ts DESC, received DESC) = 1 ORDER BY path",
        [lot_id],
    ).fetchall()
    span_of = _order_spans(cursor, (order for _, _, order in latest))
    found = []
    for path, created, order in latest:
        start, end = _window(span_of, order, created)
        found.append((str(path), start if start is not None else created, end if end is not None else created, created))
    return found


def trace(
    cursor: duckdb.DuckDBPyConnection,
    lot_id: str,
    *,
    direction: Direction = "backward",
    max_depth: int = 50,
    tz: ZoneInfo = UTC_ZONE,
) -> LotTree:
    """Every lot reachable from ``lot_id`` through lot inputs, with its order, cells, inspections and window.

    Args:
        cursor: a DuckDB cursor on the historian database.
        lot_id: the lot to start from (depth 0).
        direction: ``backward`` (its inputs, recursively) or ``forward`` (the lots it went into).
        max_depth: how many input steps to follow at most.
        tz: the zone of the times returned.

    Raises:
        BadArgument: for an unknown direction, a depth outside 0..1000, or a lot no MES table names.
    """
    if direction not in _STEP:
        raise BadArgument("direction", f"must be backward or forward (got {direction!r})")
    if not 0 <= max_depth <= _MAX_DEPTH:
        raise BadArgument("max_depth", f"must be 0..{_MAX_DEPTH} (got {max_depth})")
    known = cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM mes_lots WHERE lot_id = $1)"
        " OR EXISTS (SELECT 1 FROM mes_lot_inputs WHERE lot_id = $1 OR input_lot_id = $1)"
        " OR EXISTS (SELECT 1 FROM mes_consumption WHERE lot_id = $1)"
        " OR EXISTS (SELECT 1 FROM mes_inspections WHERE lot_id = $1)",
        [lot_id],
    ).fetchone()
    if not known or not known[0]:
        raise BadArgument("lot_id", f"no lot {lot_id!r} in lot production, lot inputs, consumption or inspections")
    src, dst = _STEP[direction]
    walked = cursor.execute(_WALK_SQL.format(src=src, dst=dst), [lot_id, max_depth]).fetchall()
    depth = {str(lot): int(level) for lot, level in walked}
    inner = [lot for lot, level in depth.items() if level < max_depth]
    frontier = [lot for lot, level in depth.items() if level == max_depth]
    rows = cursor.execute(
        f"SELECT DISTINCT lot_id, input_lot_id, material_id, quantity FROM mes_lot_inputs"  # noqa: S608 (column names)
        f" WHERE {src} IN (SELECT unnest(?::VARCHAR[]))",
        [inner],
    ).fetchall()
    more = cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM mes_lot_inputs WHERE {src} IN (SELECT unnest(?::VARCHAR[])))",  # noqa: S608
        [frontier],
    ).fetchone()
    found = [LotEdge(lot_id=a, input_lot_id=b, material_id=m, quantity=q) for a, b, m, q in rows]
    cycles = _closing_edges(lot_id, found, direction)
    edges = [edge for edge in found if edge not in cycles]
    truncated = bool(more and more[0])
    if cycles:
        log.warning(
            "lot trace from %s (%s): %d input edges close a cycle, not followed", lot_id, direction, len(cycles)
        )
    ordered = sorted(depth, key=lambda lot: (depth[lot], lot))
    info = _details(cursor, ordered, tz)
    nodes = tuple(info[lot].node(lot, depth[lot], tz) for lot in ordered)
    key = _edge_key
    return LotTree(
        root=lot_id,
        direction=direction,
        nodes=nodes,
        edges=tuple(sorted(edges, key=key)),
        cycles=tuple(sorted(cycles, key=key)),
        truncated=truncated,
    )


def _closing_edges(root: str, edges: Sequence[LotEdge], direction: Direction) -> set[LotEdge]:
    """The edges that lead back to a lot on the current path of a depth-first walk from ``root``."""
    after: dict[str, list[tuple[str, LotEdge]]] = {}
    for edge in sorted(edges, key=_edge_key):
        src, dst = (edge.lot_id, edge.input_lot_id) if direction == "backward" else (edge.input_lot_id, edge.lot_id)
        after.setdefault(src, []).append((dst, edge))
    closing: set[LotEdge] = set()
    on_path: set[str] = {root}
    done: set[str] = set()
    stack = [(root, iter(after.get(root, ())))]
    while stack:  # iterative: a deep genealogy must not hit Python's recursion limit
        lot, pending = stack[-1]
        step = next(pending, None)
        if step is None:
            stack.pop()
            on_path.discard(lot)
            done.add(lot)
            continue
        nxt, edge = step
        if nxt in on_path:
            closing.add(edge)
        elif nxt not in done:
            on_path.add(nxt)
            stack.append((nxt, iter(after.get(nxt, ()))))
    return closing


def _edge_key(edge: LotEdge) -> tuple[str, str, str]:
    return edge.lot_id, edge.input_lot_id, edge.material_id or ""


# ---------------------------------------------------------------------------------------------
# process values


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ProcessValue:
    """One metric at a lot's cell during the lot's production window."""

    topic: str
    path: str
    metric: str
    unit: str | None
    samples: int
    """Numeric samples inside the window (both ends included)."""
    min: float | None
    avg: float | None
    max: float | None
    at_creation: Value
    """The value in force when the lot was created (the latest sample at or before ``created``)."""
    at_creation_ts: datetime | None


_PROCESS_SQL = """
WITH made AS (
    SELECT unnest(?::VARCHAR[]) AS made_path, unnest(?::TIMESTAMPTZ[]) AS wa, unnest(?::TIMESTAMPTZ[]) AS wb,
           unnest(?::TIMESTAMPTZ[]) AS created
), chosen AS (
    SELECT series_id, topic, path, metric, unit, datatype, wa, wb, created FROM series
    JOIN made ON path = made_path OR starts_with(path, made_path || '/')
    WHERE class = 'data' AND {topics}
    QUALIFY row_number() OVER (PARTITION BY series_id ORDER BY length(made_path) DESC) = 1
), stats AS (
    SELECT s.series_id, count(s.value) AS n, min(s.value) AS lo, avg(s.value) AS mean, max(s.value) AS hi
    FROM samples s JOIN chosen c ON s.series_id = c.series_id
    WHERE s.ts >= ? AND s.ts <= ? AND s.ts >= c.wa AND s.ts <= c.wb GROUP BY s.series_id
), probe AS (
    SELECT series_id, created AS at FROM chosen
), as_of AS (
    SELECT p.series_id, s.ts, s.value, s.value_text, s.value_json
    FROM probe p ASOF LEFT JOIN samples s ON p.series_id = s.series_id AND p.at >= s.ts
)
SELECT c.topic, c.path, c.metric, c.unit, c.datatype, coalesce(st.n, 0), st.lo, st.mean, st.hi,
       a.value, a.value_text, a.value_json::VARCHAR, epoch_ms(a.ts)
FROM chosen c LEFT JOIN stats st ON st.series_id = c.series_id LEFT JOIN as_of a ON a.series_id = c.series_id
ORDER BY c.topic
"""


def process_values(
    cursor: duckdb.DuckDBPyConnection, lot_id: str, *, metrics: Sequence[str], tz: ZoneInfo = UTC_ZONE
) -> list[ProcessValue]:
    """The historian's samples at the lot's cells during its production there, per matching metric.

    ``metrics`` are MQTT topics or filters over data topics (``acme/+/+/+/+/data/Temperature``);
    only series at or below a path where the lot was made are included. Each series is read over the
    production window of the lot's latest event at its path (the nearest such path above it), and
    ``at_creation`` as of that event: a unit reworked at a rework cell shows its assembly cell over
    the order that assembled it and the rework cell over the rework.

    Raises:
        BadArgument: for a malformed filter, or a lot with no lot_production event (no cell, no time).
    """
    topics, topic_params = topic_condition("topic", list(metrics), field="metrics")
    made = _made_windows(cursor, lot_id)
    if not made:
        raise BadArgument("lot_id", f"no lot_production event for lot {lot_id!r}: its cells and time are unknown")
    paths = [path for path, *_ in made]
    starts = [instant(start, UTC_ZONE) for _, start, _, _ in made]
    ends = [instant(end, UTC_ZONE) for _, _, end, _ in made]
    created = [instant(at, UTC_ZONE) for *_, at in made]
    sql = _PROCESS_SQL.format(topics=topics)
    # the overall bounds as constants too, so DuckDB skips the samples outside every window
    params = [paths, starts, ends, created, *topic_params, min(starts), max(ends)]
    rows = cursor.execute(sql, params).fetchall()
    return [
        ProcessValue(
            topic=topic, path=path, metric=metric, unit=unit, samples=int(n), min=lo, avg=mean, max=hi,
            at_creation=typed_value(datatype, value, text, json_text) if at_ms is not None else None,
            at_creation_ts=_instant(at_ms, tz),
        )
        for topic, path, metric, unit, datatype, n, lo, mean, hi, value, text, json_text, at_ms in rows
    ]  # fmt: skip
