"""The MES views without a transport: query parameters in, JSON documents out (HTTP and ``uns mes``).

Every document has ``"rows"`` (flat objects) except ``spc`` and ``genealogy``, which return one
object (a chart, a tree). Times default to the last 8 hours; ``tz`` (default UTC) reads times
without an offset and groups days. The views measured in time cut an ``end`` after now at now and say
so (``_Happened``: ``start``, ``end``, ``asked_end`` beside ``rows``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Literal, cast

import duckdb

from model.config import MesSection
from uns.errors import BadArgument
from uns.mes.downtime import current, downtime, state_timeline
from uns.mes.genealogy import Direction, process_values, trace
from uns.mes.lookups import characteristics, lots
from uns.mes.maintenance_reliability import reliability
from uns.mes.maintenance_views import MaintenanceKind, MaintenanceStatusFilter, fault_pareto, maintenance_orders
from uns.mes.oee import GroupBy, oee
from uns.mes.orders import OrderStatus, order_progress
from uns.mes.quality import ScrapGroup, defects, scrap, spc
from uns.mes.resources import LaborGroup, labor, material
from uns.mes.scope import check_path
from uns.query.args import Document, Params, QueryArgs
from uns.query.timespec import checked_window

__all__ = ["VIEWS", "VIEW_PARAMS", "run_view"]

_Handler = Callable[[duckdb.DuckDBPyConnection, MesSection, QueryArgs], Document]
_WINDOW = ("path", "start", "end", "tz")


def _rows(items: object) -> Document:
    return {"rows": items}


def _choice(args: QueryArgs, key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = args.one(key, default)
    if value not in allowed:
        raise BadArgument(key, f"one of {', '.join(allowed)} (got {value!r})")
    return value


_NEWEST_AFTER = """SELECT max(ts) FROM (
    SELECT ts FROM mes_states WHERE ts > $now AND ($p = '' OR path = $p OR starts_with(path, $p || '/'))
    UNION ALL
    SELECT ts FROM mes_counts WHERE ts > $now AND ($p = '' OR path = $p OR starts_with(path, $p || '/')))"""
_EVENT_RESOLUTION = timedelta(milliseconds=1)


@dataclasses.dataclass(frozen=True, slots=True)
class _Happened:
    """The window of a view measured in time (oee, downtime, timeline, reliability): ``end`` cut at now.

    Time after now has not happened: the last state is not carried on into it, so a running shift
    asked with its planned end is the shift so far. "Now" is the hub's clock or, when the machine
    states or counts stored at or under the path are stamped later (a device clock ahead of the hub's,
    a case sent ahead of time), just after the newest of them (``_EVENT_RESOLUTION``): what is stored
    has happened and stays in the window. The document says so (``start``, ``end`` cut, ``asked_end``);
    a window that starts at or after now is empty (``end`` = ``start``).
    """

    start: datetime
    end: datetime
    asked_end: datetime
    now: datetime
    """The hub's now, or just after the newest state or count in scope stamped later."""

    @classmethod
    def of(cls, cursor: duckdb.DuckDBPyConnection, args: QueryArgs, default_start: str) -> _Happened:
        start, asked = args.time("start", default_start), args.time("end", "now")
        checked_window(start, asked)
        now = args.now
        newest = cursor.execute(_NEWEST_AFTER, {"now": now, "p": args.one("path", "")}).fetchone()
        if newest is not None and newest[0] is not None:
            now = newest[0] + _EVENT_RESOLUTION
        return cls(start, max(start, min(asked, now)), asked, now)

    @property
    def empty(self) -> bool:
        """Nothing of the window has happened yet."""
        return self.end <= self.start

    def document(self, args: QueryArgs, rows: object) -> Document:
        """The view's rows and its window as answered: ``end`` cut at now, ``asked_end`` as asked."""
        return {
            "rows": rows,
            "start": args.at(self.start),
            "end": args.at(self.end),
            "asked_end": args.at(self.asked_end),
        }


def _oee(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    by = cast(GroupBy, _choice(args, "by", "cell", ("cell", "line", "shift", "order", "day", "hour")))
    span = _Happened.of(cursor, args, "-8h")
    path = args.one("path")
    rows = [] if span.empty else oee(
        cursor, section, path=path, start=span.start, end=span.end, by=by, tz=args.tz,
        output_cells=section.output_cells, plant_outputs=section.plant_outputs,
    )  # fmt: skip
    return span.document(args, rows)


def _downtime(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    span = _Happened.of(cursor, args, "-8h")
    path = args.one("path")
    rows = [] if span.empty else downtime(cursor, section, path=path, start=span.start, end=span.end)
    return span.document(args, rows)


def _timeline(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    span = _Happened.of(cursor, args, "-8h")
    path = args.one("path")
    rows = [] if span.empty else state_timeline(cursor, section, path=path, start=span.start, end=span.end)
    return span.document(args, rows)


def _current(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    return _rows(
        current(cursor, section, now=args.now, output_cells=section.output_cells, plant_outputs=section.plant_outputs)
    )


def _orders(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    line = args.one("line", "") or None
    status = _choice(args, "status", "any", ("any", "released", "running", "completed"))
    chosen = None if status == "any" else cast(OrderStatus, status)
    return _rows(
        order_progress(
            cursor, line=line, status=chosen, now=args.now, output_cells=section.output_cells,
            output_only=section.output_only_lines, plant_outputs=section.plant_outputs,
        )
    )  # fmt: skip


def _scrap(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    by = cast(ScrapGroup, _choice(args, "by", "cell", ("cell", "line", "order", "day")))
    rows = scrap(
        cursor, path=args.one("path"), start=args.time("start", "-8h"), end=args.time("end", "now"), by=by, tz=args.tz,
        output_cells=section.output_cells, output_only=section.output_only_lines,
        plant_outputs=section.plant_outputs,
    )  # fmt: skip
    return _rows(rows)


def _defects(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    return _rows(defects(cursor, path=args.one("path"), start=args.time("start", "-8h"), end=args.time("end", "now")))


def _spc(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    size_text = args.one("subgroup", "1")
    if not size_text.isdigit():
        raise BadArgument("subgroup", f"a whole number 1..10 (got {size_text!r})")
    chart = spc(
        cursor, characteristic=args.one("characteristic"), path=args.one("path", "") or None,
        start=args.time("start", "-7d"), end=args.time("end", "now"), subgroup_size=int(size_text), tz=args.tz,
    )  # fmt: skip
    return dataclasses.asdict(chart)


def _characteristics(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    rows = characteristics(
        cursor, path=args.one("path", "") or None, start=args.time("start", "-7d"), end=args.time("end", "now"),
        tz=args.tz,
    )  # fmt: skip
    return _rows(rows)


def _lots(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    rows = lots(
        cursor, path=args.one("path", "") or None, start=args.time("start", "-7d"), end=args.time("end", "now"),
        query=args.one("q", ""), limit=args.limit(100), tz=args.tz,
    )  # fmt: skip
    return _rows(rows)


def _labor(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    by = cast(LaborGroup, _choice(args, "by", "order", ("order", "cell", "operator")))
    report = labor(
        cursor, path=args.one("path"), start=args.time("start", "-8h"), end=args.time("end", "now"),
        by=by, now=args.now, tz=args.tz,
    )  # fmt: skip
    return dataclasses.asdict(report)


def _material(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    report = material(
        cursor, order_id=args.one("order_id"), output_cells=section.output_cells, plant_outputs=section.plant_outputs
    )
    return dataclasses.asdict(report)


def _genealogy(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    direction = cast(Direction, _choice(args, "direction", "backward", ("backward", "forward")))
    depth = args.one("depth", "50")
    if not depth.isdigit() or not 1 <= int(depth) <= 1000:
        raise BadArgument("depth", f"a whole number 1..1000 (got {depth!r})")
    tree = trace(cursor, args.one("lot"), direction=direction, max_depth=int(depth), tz=args.tz)
    return dataclasses.asdict(tree)


def _process_values(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    metrics = args.many("metric") or ["#"]
    return _rows(process_values(cursor, args.one("lot"), metrics=metrics, tz=args.tz))


def _maintenance(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    status = _choice(args, "status", "any", ("any", "open", "opened", "started", "closed", "cancelled"))
    kind = _choice(args, "kind", "any", ("any", "planned", "corrective"))
    rows = maintenance_orders(
        cursor, path=args.one("path", "") or None, start=args.time("start", "-7d"), end=args.time("end", "now"),
        now=args.now, status=cast(MaintenanceStatusFilter, status), kind=cast(MaintenanceKind, kind),
        fault_code=args.one("fault_code", "") or None, limit=args.limit(100), tz=args.tz,
    )  # fmt: skip
    return _rows(rows)


def _reliability(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    by = cast(Literal["cell", "line"], _choice(args, "by", "cell", ("cell", "line")))
    span = _Happened.of(cursor, args, "-7d")
    path = args.one("path")
    rows = [] if span.empty else reliability(
        cursor, section, path=path, start=span.start, end=span.end, now=span.now, by=by,
        output_cells=section.output_cells, plant_outputs=section.plant_outputs,
    )  # fmt: skip
    return span.document(args, rows)


def _faults(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    kind = cast(MaintenanceKind, _choice(args, "kind", "corrective", ("any", "planned", "corrective")))
    rank = cast(Literal["time", "count"], _choice(args, "rank", "time", ("time", "count")))
    rows = fault_pareto(
        cursor, path=args.one("path", "") or None, start=args.time("start", "-7d"), end=args.time("end", "now"),
        kind=kind, rank=rank,
    )  # fmt: skip
    return _rows(rows)


def _dead_letters(cursor: duckdb.DuckDBPyConnection, section: MesSection, args: QueryArgs) -> Document:
    limit = args.limit(100)
    rows = cursor.execute(
        "SELECT received, topic, event, field, reason, body FROM mes_dead_letters ORDER BY received DESC LIMIT ?",
        [limit],
    ).fetchall()
    keys = ("received", "topic", "event", "field", "reason", "body")
    return _rows([dict(zip(keys, (args.at(row[0]), *row[1:]), strict=True)) for row in rows])


_VIEWS: dict[str, tuple[_Handler, tuple[str, ...]]] = {
    "oee": (_oee, (*_WINDOW, "by")),
    "downtime": (_downtime, _WINDOW),
    "timeline": (_timeline, _WINDOW),
    "current": (_current, ()),
    "orders": (_orders, ("line", "status")),
    "scrap": (_scrap, (*_WINDOW, "by")),
    "defects": (_defects, _WINDOW),
    "spc": (_spc, ("characteristic", "path", "start", "end", "subgroup", "tz")),
    "characteristics": (_characteristics, (*_WINDOW,)),
    "lots": (_lots, (*_WINDOW, "q", "limit")),
    "labor": (_labor, (*_WINDOW, "by")),
    "material": (_material, ("order_id",)),
    "genealogy": (_genealogy, ("lot", "direction", "depth", "tz")),
    "process-values": (_process_values, ("lot", "metric", "tz")),
    "dead-letters": (_dead_letters, ("limit",)),
    "maintenance": (_maintenance, (*_WINDOW, "status", "kind", "fault_code", "limit")),
    "reliability": (_reliability, (*_WINDOW, "by")),
    "faults": (_faults, (*_WINDOW, "kind", "rank")),
}
VIEWS = tuple(_VIEWS)
"""View names: ``/api/mes/<name>`` and ``uns mes <name>``."""
VIEW_PARAMS: dict[str, tuple[str, ...]] = {name: allowed for name, (_, allowed) in _VIEWS.items()}
"""The parameters each view takes."""


def run_view(
    cursor: duckdb.DuckDBPyConnection,
    section: MesSection,
    view: str,
    params: Params,
    *,
    now: datetime,
    equipment: Collection[str] | None = None,
) -> Document:
    """Answer one view on a read cursor; synchronous, so run it in a thread.

    ``equipment`` (the plant file's paths) turns on the path check: a ``path`` (or the orders'
    ``line``) that is neither equipment nor the path of stored MES events is refused.

    Raises:
        BadArgument: naming the parameter (HTTP 400, CLI exit 2).
        UnknownPath: no equipment and no events at the path, naming the nearest (HTTP 404, CLI exit 1).
        KeyError: a view that does not exist.
    """
    handler, allowed = _VIEWS[view]
    args = QueryArgs(view, params, allowed, now)
    if equipment is not None:
        for field in ("path", "line"):
            given = args.one(field, "") if field in allowed else ""
            if given:
                check_path(cursor, given, equipment, field=field)
    return handler(cursor, section, args)
