"""Downtime Pareto by reason, the state timeline for the UI, and the live state and OEE of every cell and line.

Read-only: every function takes a DuckDB cursor and runs in a caller's thread. Time is built and
classified as ``uns.mes.intervals`` describes, so a late ``downtime_reason`` moves its interval
from one Pareto bar to another on the next query.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta

import duckdb

from model.config import MesSection
from uns.clock import span_us
from uns.errors import BadArgument
from uns.mes import facts
from uns.mes.intervals import LATEST_SHIFT, Window
from uns.mes.memo import of as memo_of
from uns.mes.oee import OeeRow, compute, entities_under, paths_with_data
from uns.mes.paths import in_subtree, line_of
from uns.mes.states import state_name
from uns.query.timespec import checked_window

__all__ = ["CurrentRow", "DowntimeRow", "TimelineInterval", "current", "downtime", "state_timeline"]

_CLOSE, _NEAR = timedelta(hours=1), timedelta(days=1)  # where the state at an instant is looked for first
_BEGINNING = datetime(1, 1, 1, tzinfo=UTC)
_LOSSES = ("availability", "performance")
"""The classes of lost time the Pareto shows; ties go to the first (planned downtime is not lost time)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DowntimeRow:
    """One bar of the downtime Pareto: one reason (its code, else its state's name), whatever its loss class."""

    reason: str
    """The reason code, else the state's name."""
    reason_code: str | None
    text: str | None
    """The reason catalog's text for the code."""
    state: int
    """The state the most time of this bar was in."""
    state_name: str
    loss: str
    """The bar's loss class: availability or performance, whichever holds more of its time."""
    availability_s: float
    """Seconds of the bar that are availability loss."""
    performance_s: float
    """Seconds of the bar that are performance loss (microstops, and stops classed performance)."""
    duration_s: float
    count: int
    """Stops (state intervals) that contributed."""
    share: float
    cumulative_share: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TimelineInterval:
    """One stretch of the state timeline."""

    path: str
    start: datetime
    end: datetime
    state: int
    name: str
    reason_code: str | None
    loss: str


@dataclasses.dataclass(slots=True)
class _Bar:
    code: str | None
    by_state: dict[int, int] = dataclasses.field(default_factory=dict)
    """Microseconds per state (whole numbers: the same sum whatever pieces the time came in)."""
    by_loss: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(_LOSSES, 0))
    stops: set[tuple[str, datetime]] = dataclasses.field(default_factory=set)
    more_stops: int = 0
    """Stops counted from facts and not in ``stops``."""

    @property
    def micros(self) -> int:
        return sum(self.by_state.values())

    def add(self, state: int, loss: str, micros: int) -> None:
        self.by_state[state] = self.by_state.get(state, 0) + micros
        self.by_loss[loss] += micros


def _state_paths(cursor: duckdb.DuckDBPyConnection, path: str) -> list[str]:
    memo = memo_of(cursor) if facts.facts_active() else None
    if memo is not None:
        return sorted(p for p in memo.paths(cursor)[0] if not path or in_subtree(p, path))
    rows = cursor.execute(
        "SELECT DISTINCT path FROM mes_states WHERE $p = '' OR path = $p OR starts_with(path, $p || '/') ORDER BY path",
        {"p": path},
    ).fetchall()
    return [row[0] for row in rows]


def downtime(
    cursor: duckdb.DuckDBPyConnection, section: MesSection, *, path: str, start: datetime, end: datetime
) -> list[DowntimeRow]:
    """Pareto of lost time at or under ``path`` in ``[start, end)``: one bar per reason, whatever its loss class.

    A stop's reason is its label's or machine's reason code, else its state's name; a bar sums
    every availability and performance piece of that reason (a 90 s and a 20 min "stop" are one
    bar, its time split in ``availability_s``/``performance_s``). Planned downtime is not lost time
    and not in it. Bars are sorted by duration, longest first.

    Raises:
        BadArgument: a naive time or an empty window.
    """
    checked_window(start, end)
    paths = _state_paths(cursor, path)
    segments = facts.plan(cursor, section, paths, start, end)
    bars: dict[str, _Bar] = {}
    for piece in facts.direct_pieces(cursor, section, segments, paths=paths, end=end):
        if piece.loss not in _LOSSES:
            continue
        key = piece.reason_code or state_name(piece.state)
        bar = bars.setdefault(key, _Bar(piece.reason_code))
        bar.add(piece.state, piece.loss, span_us(piece.start, piece.end))
        bar.stops.add((piece.path, piece.stop_start))
    stretches = [(s.start, s.end) for s in segments if s.from_facts]
    # a direct piece's stop begun in a fact stretch: the facts count it too (its pieces there need not touch
    # the stretch's end: a planned break may lie between)
    carried = {stop for bar in bars.values() for _, stop in bar.stops if any(a <= stop < b for a, b in stretches)}
    for fact in facts.fact_bars(cursor, paths, segments, carried=carried):
        key = fact.reason_code or state_name(fact.state)
        bar = bars.setdefault(key, _Bar(fact.reason_code))
        for state, loss, micros in fact.time:
            bar.add(state, loss, micros)
        bar.more_stops += fact.stops - len(bar.stops & fact.edge_stops)
    total = sum(bar.micros for bar in bars.values())
    rows: list[DowntimeRow] = []
    running = 0
    for key, bar in sorted(bars.items(), key=lambda item: (-item[1].micros, item[0])):
        running += bar.micros
        state = max(sorted(bar.by_state), key=bar.by_state.__getitem__)  # a tie goes to the lower code
        rows.append(
            DowntimeRow(
                reason=key,
                reason_code=bar.code,
                text=section.reasons.get(bar.code) if bar.code else None,
                state=state,
                state_name=state_name(state),
                loss="availability" if bar.by_loss["availability"] >= bar.by_loss["performance"] else "performance",
                availability_s=bar.by_loss["availability"] / 1e6,
                performance_s=bar.by_loss["performance"] / 1e6,
                duration_s=bar.micros / 1e6,
                count=len(bar.stops) + bar.more_stops,
                share=bar.micros / total if total else 0.0,
                cumulative_share=running / total if total else 0.0,
            )
        )
    return rows


def state_timeline(
    cursor: duckdb.DuckDBPyConnection, section: MesSection, *, path: str, start: datetime, end: datetime
) -> list[TimelineInterval]:
    """The states of every path at or under ``path`` in ``[start, end)``, labels applied, with loss classes.

    Neighbouring pieces with the same state, reason and loss are merged.

    Raises:
        BadArgument: a naive time or an empty window.
    """
    checked_window(start, end)
    merged: list[TimelineInterval] = []
    paths = _state_paths(cursor, path)
    segments = facts.plan(cursor, section, paths, start, end)
    found = facts.direct_pieces(cursor, section, segments, paths=paths, end=end)
    found += facts.fact_pieces(cursor, paths, segments)
    for piece in sorted(found, key=lambda item: (item.path, item.start)):
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.path == piece.path
            and last.end == piece.start
            and (last.state, last.reason_code, last.loss) == (piece.state, piece.reason_code, piece.loss)
        ):
            merged[-1] = dataclasses.replace(last, end=piece.end)
            continue
        merged.append(
            TimelineInterval(
                path=piece.path,
                start=piece.start,
                end=piece.end,
                state=piece.state,
                name=state_name(piece.state),
                reason_code=piece.reason_code,
                loss=piece.loss,
            )
        )
    return merged


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CurrentRow:
    """The live picture of a cell or line: what the adapter publishes as KPIs."""

    path: str
    kind: str
    """cell or line."""
    state: int | None
    state_name: str | None
    reason_code: str | None
    since: datetime | None
    order_id: str | None
    shift_id: str | None
    """The running shift the OEE covers, else None (then the last ``kpi_window_h`` hours)."""
    oee: OeeRow


_NOW_STATE = """
SELECT path, ts, state, reason_code
FROM mes_states WHERE ts <= $now AND ts >= $since AND path IN (SELECT unnest($paths::VARCHAR[]))
QUALIFY row_number() OVER (PARTITION BY path ORDER BY ts DESC, received DESC, event_key DESC) = 1
"""

_NOW_LABELS = """
WITH m AS (SELECT unnest($paths::VARCHAR[]) AS path, unnest($froms::TIMESTAMPTZ[]) AS t0)
SELECT r.path, r.start_ts, r.end_ts, r.state, r.reason_code
FROM mes_reasons r JOIN m ON r.path = m.path AND r.end_ts > m.t0 AND r.start_ts <= $now
ORDER BY r.ts, r.received, r.event_key
"""
"""The labels of each path covering a moment from its given instant until now, oldest version first (the last
covering wins)."""

_Label = tuple[datetime, datetime, int | None, str | None]


def _now_labels(
    cursor: duckdb.DuckDBPyConnection, froms: Mapping[str, datetime], now: datetime
) -> dict[str, list[_Label]]:
    """Each path's labels covering a moment from ``froms[path]`` to ``now`` (``_NOW_LABELS``)."""
    labels: dict[str, list[_Label]] = {}
    params = {"paths": list(froms), "froms": list(froms.values()), "now": now}
    for path, la, lb, state, reason in cursor.execute(_NOW_LABELS, params).fetchall():
        labels.setdefault(path, []).append((la, lb, None if state is None else int(state), reason))
    return labels


_ROWS_BEFORE = """
SELECT ts, state, reason_code FROM mes_states
WHERE path = $path AND ts < $row
  AND ts >= coalesce((SELECT max(ts) FROM mes_states WHERE path = $path AND ts <= $lo), $lo)
ORDER BY ts, received, event_key
"""
"""A path's machine rows before ``row`` from the one it had at ``lo`` (``_since_labelled``)."""

_EARLIER_STEPS = 4
"""How many times ``current``'s ``since`` reads further back for labels begun before the rows it has."""

_RUNNING = """
SELECT o_line, order_id FROM (
    SELECT order_id, min(ts) FILTER (WHERE action = 'start') AS o_start,
           min(ts) FILTER (WHERE action = 'complete') AS o_end,
           arg_min(line, ts) FILTER (WHERE action = 'start') AS o_line
    FROM mes_work_orders WHERE ts <= $now GROUP BY order_id)
WHERE o_start IS NOT NULL AND o_end IS NULL
QUALIFY row_number() OVER (PARTITION BY o_line ORDER BY o_start DESC, order_id DESC) = 1
"""

_SHIFTS = f"""
WITH latest AS (SELECT path, shift_id, start_ts, end_ts, ts FROM mes_shifts QUALIFY {LATEST_SHIFT})
SELECT e.p, arg_max(s.shift_id, (s.start_ts, s.ts)), max(s.start_ts)
FROM (SELECT unnest($paths::VARCHAR[]) AS p) e
JOIN latest s ON (e.p = s.path OR starts_with(e.p, s.path || '/')) AND s.start_ts <= $now AND s.end_ts > $now
GROUP BY e.p
"""  # noqa: S608 (our SQL, one fixed fragment)
"""The running shift of each path (its own or an ancestor's; the latest started), in one query: of a shift
re-sent (one ``shift_id`` at one path) the latest version, as the time model (``uns.mes.intervals``) takes it."""


def _labelled(
    rows: list[tuple[datetime, int, str | None]], labels: list[_Label], now: datetime
) -> tuple[datetime, int, str | None]:
    """The state and reason at ``now`` as labelled, and since when they hold (at the earliest the first row).

    ``rows``: the machine's rows, oldest first (of one instant, the last wins); ``labels``: every label covering
    a moment from the first row on, oldest version first (the last covering wins).
    """
    times = [row[0] for row in rows]

    def at(moment: datetime) -> tuple[int, str | None]:
        _, state, reason = rows[max(0, bisect.bisect_right(times, moment) - 1)]
        for la, lb, l_state, l_reason in reversed(labels):
            if la <= moment < lb:
                return (state if l_state is None else l_state), (reason if l_reason is None else l_reason)
        return state, reason

    edges = sorted({*times, *(t for la, lb, _, _ in labels for t in (la, lb) if times[0] < t <= now)})
    value = at(edges[-1])
    since = edges[-1]
    for edge in reversed(edges[:-1]):
        if at(edge) != value:
            break
        since = edge
    return since, *value


def _since_labelled(
    cursor: duckdb.DuckDBPyConnection,
    path: str,
    machine: tuple[datetime, int, str | None],
    labels: list[_Label],
    now: datetime,
) -> tuple[datetime, int, str | None]:
    """``_labelled`` from the machine's latest row, walked back before it while a label begun earlier covers it.

    A failure labelled from 08:30 over a stop since 09:00 (and production before) has been shown since 08:30,
    as the timeline shows it: the machine's rows and the labels from the one at the label's start are read
    (rarely: only when such a label covers the row), ``_EARLIER_STEPS`` times at most.
    """
    rows = [machine]
    result = _labelled(rows, labels, now)
    for _ in range(_EARLIER_STEPS):
        first = rows[0][0]
        starts = [la for la, lb, _, _ in labels if la < first < lb]
        if result[0] != first or not starts:
            break
        params = {"path": path, "row": first, "lo": min(starts)}
        earlier = [(ts, int(state), reason) for ts, state, reason in cursor.execute(_ROWS_BEFORE, params).fetchall()]
        if not earlier:
            break
        rows = earlier + rows
        labels = _now_labels(cursor, {path: rows[0][0]}, now).get(path, [])
        result = _labelled(rows, labels, now)
    return result


def _now_states(
    cursor: duckdb.DuckDBPyConnection, now: datetime, paths: Collection[str]
) -> dict[str, tuple[datetime, int, str | None]]:
    """Each state path's state at ``now`` as labelled, and since when: looked for in the last day, then further back.

    ``since`` is when the state and reason shown began: the machine's row, or a label's edge after it (a failure
    labelled from 09:30 on a stop since 09:00 is a failure since 09:30; the stop is back when the label ends), or
    before the row when a label begun earlier covers it (``_since_labelled``).
    """
    machines: dict[str, tuple[datetime, int, str | None]] = {}
    for since in (now - _CLOSE, now - _NEAR, _BEGINNING):
        missing = [path for path in paths if path not in machines]
        if not missing:
            break
        rows = cursor.execute(_NOW_STATE, {"now": now, "since": since, "paths": missing}).fetchall()
        machines.update((path, (ts, int(state), reason)) for path, ts, state, reason in rows)
    if not machines:
        return {}
    labels = _now_labels(cursor, {path: machine[0] for path, machine in machines.items()}, now)
    return {
        path: _since_labelled(cursor, path, machine, labels.get(path, []), now) for path, machine in machines.items()
    }


def current(
    cursor: duckdb.DuckDBPyConnection,
    section: MesSection,
    *,
    now: datetime,
    output_cells: Mapping[str, str] | None = None,
    plant_outputs: Mapping[str, str] | None = None,
) -> list[CurrentRow]:
    """Every cell and line with states or counts: its state and order now, and OEE over the running shift.

    Without a running shift the OEE covers the last ``section.kpi_window_h`` hours. ``output_cells`` (the
    settings') and ``plant_outputs`` (the defaults): each line's output, ``uns.mes.line_output``.

    Raises:
        BadArgument: a naive ``now``.
    """
    if now.tzinfo is None:
        raise BadArgument("now", "needs a time zone")
    outputs = output_cells or {}
    known = paths_with_data(cursor)  # read once for the states and both kinds of entities
    states = _now_states(cursor, now, sorted(known[0]))
    running = dict(cursor.execute(_RUNNING, {"now": now}).fetchall())
    only = section.output_only_lines
    entities = [
        *entities_under(cursor, "", "cell", outputs, known=known),
        *entities_under(cursor, "", "line", outputs, only, known=known, plant_outputs=plant_outputs),
    ]
    kinds = {e.name: ("cell" if len(e.name.split("/")) >= 5 else "line") for e in entities}
    windows: list[Window] = []
    shifts: dict[str, str | None] = {}
    running_shifts = {
        path: (shift_id, begin)
        for path, shift_id, begin in cursor.execute(
            _SHIFTS, {"paths": [e.name for e in entities], "now": now}
        ).fetchall()
    }
    for entity in entities:
        row = running_shifts.get(entity.name)
        shifts[entity.name] = None if row is None else str(row[0])
        begin = row[1] if row is not None else now - timedelta(hours=section.kpi_window_h)
        # at a shift's first instant the window [now, now) is empty: the row is there, its ratios unknown
        windows.append(Window(entity.name, entity.name, min(begin, now), now))
    rows = {r.path: r for r in compute(cursor, section, entities, windows)}
    result = []
    for entity in entities:
        oee_row = rows.get(entity.name)
        if oee_row is None:
            continue
        since, state, reason = states.get(entity.name, (None, None, None))
        result.append(
            CurrentRow(
                path=entity.name,
                kind=kinds[entity.name],
                state=None if state is None else int(state),
                state_name=None if state is None else state_name(int(state)),
                reason_code=reason,
                since=since,
                order_id=running.get(line_of(entity.name)),
                shift_id=shifts[entity.name],
                oee=oee_row,
            )
        )
    return result
