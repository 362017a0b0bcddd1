"""OEE per cell, line, shift, order, day or hour (ISO 22400-2), and the live state of every cell and line.

Read-only: every function takes a DuckDB cursor and runs in a caller's thread.

ISO 22400-2 as computed here (time model in ``uns.mes.intervals``):

- planned busy time PBT = time with data − planned downtime;
- actual production time APT = producing time + microstops (a microstop is performance loss);
- availability = APT / PBT; performance = Σ(units × ideal cycle time) / APT;
  quality = good / produced; OEE = availability × performance × quality.

Units are counted by the ``ts`` of their ``production_count`` (a count is not pro-rated across a
window edge; windows are half-open, ``[start, end)``); grouped by order, by their order instead (the
one they name, else the one running at their ``ts``), so a final count stamped at its order's
complete instant and naming it is that order's, as in the orders view. Each count's ideal cycle time
is its order's product type (latest ``product_type`` by ts; the order is the count's ``order_id``,
else the order running on its line then), else ``MesSection.ideal_cycle_time_s`` of the longest
prefix of its path; a unit with none makes performance unknown (None), as does a cell that never
counted anything (it has no counter: a rinser). On an ``output_only_lines`` line (cells count
different units) the product applies only to the output cell's counts; the other cells keep the
fallback.

A line (the rule): **time** is the line's own ``machine_state`` events when it has any, else the
union view of its cells (producing when any cell produces; see ``uns.mes.intervals``). **Units**
are the line's output (``uns.mes.line_output``, the orders' and scrap views' rule too): the counts of
the setting ``output_cells[line]`` (a cell, or the line path itself; counts on the line path while it names a
cell are stray, no units); without one, the line path's own counts when there are any, else the default
``plant_outputs[line]`` (the plant file's last cell), else the last cell by path that ever counted; scrap
counted at the other cells adds to the produced quantity (a unit scrapped anywhere was produced and lost),
so OEE = good out × ideal cycle time / PBT holds for the line as for a cell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Literal

import duckdb

from model.config import MesSection
from model.written import as_written
from uns.errors import BadArgument
from uns.mes.count_facts import CountPath, count_rows
from uns.mes.facts import facts_active, window_times
from uns.mes.intervals import LATEST_SHIFT, Times, Window
from uns.mes.line_output import line_output, unit_paths
from uns.mes.memo import of as memo_of
from uns.mes.paths import in_subtree, line_of
from uns.query.timespec import checked_window

__all__ = [
    "Entity",
    "GroupBy",
    "OeeRow",
    "compute",
    "entities_under",
    "ideal_cycle_fallback",
    "oee",
    "oee_windows",
    "paths_with_data",
]

GroupBy = Literal["cell", "line", "shift", "order", "day", "hour"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OeeRow:
    """OEE of one entity (cell or line) in one group; seconds for time parts, None where unknown."""

    path: str
    group: str
    """The group's label: the cell or line path, shift id, order id, local date or local hour."""
    start: datetime
    end: datetime
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    time_s: float
    """Time in the group with state data."""
    planned_downtime_s: float
    planned_busy_time_s: float
    availability_loss_s: float
    microstop_s: float
    performance_loss_s: float | None
    """APT − units × ideal cycle time: microstops and speed loss."""
    actual_production_time_s: float
    total: int
    good: int
    scrap: int
    ideal_cycle_time_s: float | None
    """The ideal cycle time used; the unit-weighted mean when several products ran."""


@dataclasses.dataclass(frozen=True, slots=True)
class Entity:
    """What an OEE row is about: its time paths and its count paths (path, counts as output)."""

    name: str
    time_paths: tuple[str, ...]
    count_paths: tuple[tuple[str, bool], ...]


def ideal_cycle_fallback(section: MesSection, path: str) -> float | None:
    """``MesSection.ideal_cycle_time_s`` of the longest configured prefix of ``path``."""
    best: tuple[int, float] | None = None
    for prefix, seconds in section.ideal_cycle_time_s.items():
        key = prefix.rstrip("/")
        if in_subtree(path, key) and (best is None or len(key) > best[0]):
            best = (len(key), seconds)
    return None if best is None else best[1]


def _depth(path: str) -> int:
    return len(path.split("/"))


def paths_with_data(cursor: duckdb.DuckDBPyConnection) -> tuple[set[str], set[str]]:
    """Every path with states, and every path with counts."""
    return _paths_under(cursor, "")


def _paths_under(cursor: duckdb.DuckDBPyConnection, path: str) -> tuple[set[str], set[str]]:
    """Paths at or under ``path`` with states, and with counts."""
    memo = memo_of(cursor) if facts_active() else None
    if memo is not None:
        under = [{p for p in group if not path or in_subtree(p, path)} for group in memo.paths(cursor)]
        return under[0], under[1]
    found: list[set[str]] = []
    for table in ("mes_states", "mes_counts"):
        rows = cursor.execute(
            f"SELECT DISTINCT path FROM {table} WHERE $p = '' OR path = $p OR starts_with(path, $p || '/')",  # noqa: S608
            {"p": path},
        ).fetchall()
        found.append({row[0] for row in rows})
    return found[0], found[1]


def _line_entity(
    line: str,
    states: set[str],
    counts: set[str],
    output_cells: Mapping[str, str],
    output_only: Collection[str],
    plant_outputs: Mapping[str, str],
) -> Entity:
    cells_t = sorted(p for p in states if p.startswith(line + "/"))
    time_paths = (line,) if line in states else tuple(cells_t)
    only = line in output_only
    count_paths = tuple(unit_paths(line, counts, output_cells, output_only=only, plant_outputs=plant_outputs).items())
    return Entity(line, time_paths, count_paths)


def entities_under(
    cursor: duckdb.DuckDBPyConnection,
    path: str,
    kind: Literal["cell", "line"],
    output_cells: Mapping[str, str],
    output_only: Collection[str] = (),
    *,
    known: tuple[set[str], set[str]] | None = None,
    plant_outputs: Mapping[str, str] | None = None,
) -> list[Entity]:
    """The cells (depth ≥ 5) or lines at or under ``path``, from the paths that published states or counts.

    ``known``: every path with states and with counts (``paths_with_data``), when the caller has them.
    ``output_cells`` (the settings') and ``plant_outputs`` (the defaults): ``uns.mes.line_output``.
    """
    defaults = plant_outputs or {}
    states, counts = known if known is not None else _paths_under(cursor, path)
    if kind == "cell":
        # a cell that never counted has no counter (a rinser): its performance is unknown, not 0
        cells = [path] if _depth(path) >= 5 else sorted(p for p in states | counts if _depth(p) >= 5)
        return [Entity(cell, (cell,), ((cell, True),) if cell in counts else ()) for cell in cells]
    if _depth(path) >= 4:
        line = line_of(path)
        states, counts = known if known is not None else _paths_under(cursor, line)
        return [_line_entity(line, states, counts, output_cells, output_only, defaults)]
    lines = sorted({line_of(p) for p in states | counts if _depth(p) >= 4})
    return [_line_entity(line, states, counts, output_cells, output_only, defaults) for line in lines]


def _local_buckets(start: datetime, end: datetime, tz: tzinfo, unit: Literal["day", "hour"]) -> list[datetime]:
    local = start.astimezone(tz)
    if unit == "day":
        edge = datetime(local.year, local.month, local.day, tzinfo=tz)
        edges = []
        while edge < end:
            edges.append(edge)
            following = edge.date() + timedelta(days=1)
            edge = datetime(following.year, following.month, following.day, tzinfo=tz)
        return edges
    # hours step in UTC from a local hour edge, so DST days have 23 or 25 of them
    first = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    edges = []
    while first < end:
        edges.append(first)
        first += timedelta(hours=1)
    return edges


def oee_windows(
    cursor: duckdb.DuckDBPyConnection, entity: str, *, start: datetime, end: datetime, by: GroupBy, tz: tzinfo
) -> list[Window]:
    """The groups of a shift, order, day or hour query of one entity, clipped to ``[start, end)``."""
    spans: list[tuple[str, datetime, datetime]] = []
    if by in ("day", "hour"):
        unit: Literal["day", "hour"] = "day" if by == "day" else "hour"
        edges = _local_buckets(start, end, tz, unit)
        for index, edge in enumerate(edges):
            stop = edges[index + 1] if index + 1 < len(edges) else end
            label = edge.astimezone(tz).date().isoformat() if unit == "day" else edge.astimezone(tz).isoformat()
            spans.append((label, edge, stop))
    elif by == "shift":
        # the latest version of each (path, shift_id) first, as the time model takes it (intervals.py), then the
        # window: a shift re-sent elsewhere in time is gone from where it was; ties in a fixed order
        rows = cursor.execute(
            f"""SELECT shift_id, start_ts, end_ts FROM (
                   SELECT path, shift_id, start_ts, end_ts FROM mes_shifts
                   WHERE $p = path OR starts_with($p, path || '/') QUALIFY {LATEST_SHIFT})
               WHERE start_ts < $hi AND end_ts > $lo
               ORDER BY start_ts, end_ts, shift_id, path""",  # noqa: S608 (our SQL, one fixed fragment)
            {"p": entity, "lo": start, "hi": end},
        ).fetchall()
        spans = [(shift_id, a, b) for shift_id, a, b in rows]
    else:
        rows = cursor.execute(
            """SELECT order_id, o_start, coalesce(o_end, $hi) FROM (
                   SELECT order_id, min(ts) FILTER (WHERE action = 'start') AS o_start,
                          min(ts) FILTER (WHERE action = 'complete') AS o_end,
                          arg_min(line, ts) FILTER (WHERE action = 'start') AS o_line
                   FROM mes_work_orders GROUP BY order_id)
               WHERE o_line = $line AND o_start < $hi AND coalesce(o_end, $hi) > $lo ORDER BY o_start""",
            {"line": line_of(entity), "lo": start, "hi": end},
        ).fetchall()
        spans = [(order_id, a, b) for order_id, a, b in rows]
    label_is_order = by == "order"
    windows = [
        Window(entity, label, max(a, start), min(b, end), label if label_is_order else None)
        for label, a, b in spans
        if min(b, end) > max(a, start)
    ]
    if by != "shift":
        return windows
    # one shift_id with the same hours at the site and at the line (or clipped to the same hours): one row, as
    # two would be the same numbers twice and a client could not tell them apart; rows by the start and end they
    # show (clipped to the query: two shifts from before it both start at its start), then the label
    return sorted(dict.fromkeys(windows), key=lambda w: (w.start, w.end, w.group))


def _output_only_cells(
    cursor: duckdb.DuckDBPyConnection, section: MesSection, paths: Collection[str]
) -> dict[str, str]:
    """The output of each ``output_only_lines`` line of ``paths`` (``uns.mes.line_output.line_output``).

    Reads the paths with counts only for such a line without a configured output (in memory under the hub,
    the memo's path sets).
    """
    found: dict[str, str] = {}
    configured = section.output_cells
    for line in sorted({line_of(p) for p in paths} & set(section.output_only_lines)):
        counting = () if configured.get(line) else _paths_under(cursor, line)[1]
        output = line_output(line, counting, configured, section.plant_outputs)
        if output is not None:
            found[line] = output.path
    return found


def _product_counts(section: MesSection, path: str, outputs: Mapping[str, str]) -> bool:
    """Whether the product's ideal cycle time applies to counts at ``path``.

    On a line whose cells count different units (``output_only_lines``: cases, then pallets) the
    product is counted only at the output cell (``outputs``: ``_output_only_cells``); the other cells
    keep their own ideal cycle times.
    """
    line = line_of(path)
    if line not in section.output_only_lines:
        return True
    return path == line or outputs.get(line) in (None, path)


def _ratio(top: float | None, bottom: float) -> float | None:
    return None if top is None or bottom <= 0 else top / bottom


def compute(
    cursor: duckdb.DuckDBPyConnection,
    section: MesSection,
    entities: Sequence[Entity],
    windows: Sequence[Window],
    *,
    span: tuple[datetime, datetime] | None = None,
) -> list[OeeRow]:
    """OEE rows for the given entities and windows (one row per window, in the windows' order).

    ``span`` bounds the counts of order windows (an order's counts stamped in ``span``, even at its
    complete instant or after it when they name it); default the windows' own span.
    """
    if not windows:
        return []
    keys = [(w.entity, w.group) for w in windows]
    if len(set(keys)) < len(keys):
        # two windows of one entity under one label (a site's "early" and a line's own shift "early"): a row for
        # each over its own time; times and counts below are keyed by label, so each gets its own key there (ids
        # hold no control character: no real label ends in \x00<n>). Keyed by position all the way down instead,
        # window_times, entity_times, count_rows and the memo's join would each change shape, and count_rows'
        # sums per (entity, label) over repeated labels are its tested contract (test_memo): not simpler
        keyed = [dataclasses.replace(w, group=f"{w.group}\x00{index}") for index, w in enumerate(windows)]
        own = compute(cursor, section, entities, keyed, span=span)
        return [dataclasses.replace(row, group=w.group) for row, w in zip(own, windows, strict=True)]
    lo, hi = min(w.start for w in windows), max(w.end for w in windows)
    cuts = sorted({w.start for w in windows} | {w.end for w in windows})
    members = {e.name: e.time_paths for e in entities if e.time_paths}
    times = window_times(cursor, section, members=members, windows=windows, start=lo, end=hi, cuts=cuts)
    outputs = _output_only_cells(cursor, section, [path for e in entities for path, _ in e.count_paths])
    paths: list[CountPath] = [
        (e.name, path, output, ideal_cycle_fallback(section, path), _product_counts(section, path, outputs))
        for e in entities
        for path, output in e.count_paths
    ]
    rows = count_rows(cursor, paths, windows, span=span or (lo, hi), use_facts=facts_active())
    counted = _counted(rows)
    uncounted = {e.name for e in entities if not e.count_paths}
    return [
        _row(w, times.get((w.entity, w.group), Times()), counted.get((w.entity, w.group)), w.entity in uncounted)
        for w in windows
    ]


_Counted = tuple[int, int, float | None, int, float | None]
"""(units, good, ideal seconds, units without an ideal cycle time, the one ideal cycle time when all units share it)."""


def _counted(rows: Sequence[tuple[str, str, float | None, int, int]]) -> dict[tuple[str, str], _Counted]:
    """(entity, group) -> its units, good units and ideal time (``_Counted``).

    Units are summed per ideal cycle time first, so the ideal time is units x ideal cycle time as a hand takes it,
    whatever rows (orders, paths, hours) the units came in, multiplied and added as decimals and made a float once.
    """
    parts: dict[tuple[str, str], list[tuple[float | None, int, int]]] = {}
    for entity, group, ideal, units, good in rows:
        parts.setdefault((entity, group), []).append((ideal, int(units), int(good)))
    counted: dict[tuple[str, str], _Counted] = {}
    for key, items in parts.items():
        per_ideal: dict[float, int] = {}
        for ideal, units, _ in items:
            if ideal is not None:
                per_ideal[ideal] = per_ideal.get(ideal, 0) + units
        # multiplied and summed as the decimals the ideal cycle times were written as, made seconds once: as binary
        # floats 2000 x 0.1786 s is 357.20000000000005 s, and the performance 0.04961111111111112 for 7200 s
        # (test_the_ideal_cycle_time_of_one_product_is_the_products)
        exact = sum((as_written(ideal) * units for ideal, units in per_ideal.items()), Decimal(0))
        ideal_s = float(exact) if per_ideal else None
        unknown = sum(units for ideal, units, _ in items if ideal is None)
        # the one ideal cycle time of the units made; a product counted with no units makes none of them
        made = [ideal for ideal, units in per_ideal.items() if units]
        only = made[0] if len(made) == 1 else None
        counted[key] = (sum(u for _, u, _ in items), sum(g for _, _, g in items), ideal_s, unknown, only)
    return counted


def _row(window: Window, times: Times, counts: _Counted | None, uncounted: bool) -> OeeRow:
    total, good, ideal, unknown, only = counts or (0, 0, 0.0, 0, None)
    ideal_s = None if unknown or uncounted else (ideal or 0.0)
    # from the whole microseconds: in float seconds covered - planned could end below producing + microstops for the
    # same time, an availability of 1.0000000000000002 without any loss, and their ratio one ulp off the exact one,
    # 0.7500000000000001 for 2700.003 s of 3600.004 s (tests/uns/mes/test_oee_exact.py)
    pbt_us = times.covered_us - times.planned_us
    apt_us = times.producing_us + times.microstop_us
    pbt, apt = pbt_us / 1e6, apt_us / 1e6
    availability = None if pbt_us <= 0 else apt_us / pbt_us
    performance = _ratio(ideal_s, apt)
    quality = _ratio(float(good), float(total))
    value = None
    if availability is not None and performance is not None and quality is not None:
        value = availability * performance * quality
    return OeeRow(
        path=window.entity,
        group=window.group,
        start=window.start,
        end=window.end,
        availability=availability,
        performance=performance,
        quality=quality,
        oee=value,
        time_s=times.covered_s,
        planned_downtime_s=times.planned_s,
        planned_busy_time_s=pbt,
        availability_loss_s=times.availability_s,
        microstop_s=times.microstop_s,
        performance_loss_s=None if ideal_s is None else apt - ideal_s,
        actual_production_time_s=apt,
        total=total,
        good=good,
        scrap=total - good,
        # one product's: its ideal cycle time itself (2000 x 0.1786 / 2000 is 0.17860000000000004), else the mean
        ideal_cycle_time_s=None if ideal_s is None or total == 0 else only if only is not None else ideal_s / total,
    )


def oee(
    cursor: duckdb.DuckDBPyConnection,
    section: MesSection,
    *,
    path: str,
    start: datetime,
    end: datetime,
    by: GroupBy = "cell",
    tz: tzinfo = UTC,
    output_cells: Mapping[str, str] | None = None,
    plant_outputs: Mapping[str, str] | None = None,
) -> list[OeeRow]:
    """OEE at or under ``path`` in ``[start, end)``, one row per group.

    Args:
        cursor: a DuckDB cursor on the historian database.
        section: the MES settings (loss rules, fallback ideal cycle times).
        path: a cell, a line, or a higher level (then ``by`` must be cell or line).
        start: window start (aware).
        end: window end (aware).
        by: cell, line (one row each), or shift, order, day, hour (rows of the one cell or line ``path``).
        tz: time zone of day and hour groups.
        output_cells: line → its output set in the settings (a cell or the line; ``uns.mes.line_output``).
        plant_outputs: line → its default output (the plant file's last cell), after the line's own counts.

    Raises:
        BadArgument: a naive time, an empty window, or a time grouping of a path above line level.
    """
    checked_window(start, end)
    outputs = output_cells or {}
    only = section.output_only_lines
    if by in ("cell", "line"):
        kind: Literal["cell", "line"] = "cell" if by == "cell" else "line"
        entities = entities_under(cursor, path, kind, outputs, only, plant_outputs=plant_outputs)
        windows = [Window(e.name, e.name, start, end) for e in entities]
    else:
        if _depth(path) < 4:
            raise BadArgument("path", f"grouping by {by} needs a line or a cell, not {path!r}")
        kind = "cell" if _depth(path) >= 5 else "line"
        entities = entities_under(cursor, path, kind, outputs, only, plant_outputs=plant_outputs)
        windows = oee_windows(cursor, path, start=start, end=end, by=by, tz=tz)
    return compute(cursor, section, entities, windows, span=(start, end) if by == "order" else None)
