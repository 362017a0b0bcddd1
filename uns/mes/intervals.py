"""SQL core of the machine views: state intervals split, relabelled, classified by loss and summed per window.

How time is built, per equipment path that publishes ``machine_state``:

1. A state runs from its row's ``ts`` until the path's next state row (``lead()``); the last one
   runs until the query's end. Time before a path's first state has no data and is left out.
2. ``mes_reasons`` rows relabel ``[start_ts, end_ts)``: time is split at label edges and the latest
   label (by ``ts``) covering a piece gives its reason, and its state when the label names one.
3. A stop is a run of consecutive non-producing, non-planned states as labelled (step 2); its length
   (the whole run, not clipped to the query) decides whether it is a microstop. A stop still running
   at the end of the data is never a microstop by length. Labels are read ``microstop_s`` either side
   of the query and cut there, and the runs are measured up to ``microstop_s`` after the query's end:
   a run of the query's reaching past either is not shorter than ``microstop_s`` anyway.
4. Planned windows: the breaks of every shift whose path is the equipment path or one of its
   ancestors; and, once such shifts exist, any time outside them ("no shift"); the windows of
   planned maintenance orders at the path or an ancestor (``mes_maintenance_windows``: scheduled and
   actual, a running one open). Non-producing time in a planned window is planned downtime;
   producing time stays production (the break was not taken there).
5. Loss class of each piece (ISO 22400-2, as in ``uns.mes.states.LossRules``): producing
   (10000-29999) none; a code classed planned (``uns.mes.losses``: preset, ``mes.losses``,
   ``planned_states``, changeovers when ``changeover_planned``) or a planned window: planned; a code
   classed performance (the microstop range 50000-59999 under ``iso22400``) or a stop shorter than
   ``microstop_s``: performance; everything else (unknown codes included, never a microstop by
   length): availability.

Entities: an OEE entity (a cell or a line) owns one or more paths. With several paths (a line
without its own states) time is the union view: a piece of time is producing when any path
produces, else a microstop when any path is in one, else availability loss when any path has
one, else planned.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import duckdb

from model.config import MesSection
from uns.clock import span_us
from uns.mes.losses import loss_table

__all__ = [
    "LATEST_SHIFT",
    "Piece",
    "Times",
    "Window",
    "add_times",
    "entity_times",
    "pieces",
    "pieces_query",
    "scan_from",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    """One group of an OEE query: the entity it is about, its label and its time span."""

    entity: str
    group: str
    start: datetime
    end: datetime
    order: str | None = None
    """A group by order: its units are the counts of this order (named or running then), not its time's."""


@dataclasses.dataclass(frozen=True, slots=True)
class Piece:
    """A stretch of time at one path with one state, reason and loss class."""

    path: str
    start: datetime
    end: datetime
    state: int
    """The effective state: the label's when it names one, else the machine's."""
    machine_state: int
    reason_code: str | None
    loss: str
    """none, planned, availability or performance (``uns.mes.states.LossClass`` values)."""
    stop_start: datetime
    """Start of the machine state interval this piece belongs to (counts stops)."""


LATEST_SHIFT = "row_number() OVER (PARTITION BY path, shift_id ORDER BY ts DESC, received DESC, event_key DESC) = 1"
"""The ``QUALIFY`` condition that keeps the version of a shift in effect (one ``shift_id`` at one path: the latest
by time, then arrival, then key), for every reader of ``mes_shifts``."""

_PIECES = f"""
WITH
tp AS (SELECT DISTINCT unnest($paths::VARCHAR[]) AS path),
cr AS (SELECT unnest($lows::INTEGER[]) AS lo, unnest($highs::INTEGER[]) AS hi, unnest($classes::VARCHAR[]) AS cls),
since AS (
    SELECT path, max(ts) AS t0 FROM mes_states
    WHERE path IN (SELECT path FROM tp) AND ts <= $data_lo AND ts >= $scan_lo GROUP BY path
),
st0 AS (
    SELECT s.path, s.ts AS a, s.state, s.reason_code,
           coalesce(lead(s.ts) OVER w, greatest($data_hi, s.ts)) AS b,
           lead(s.ts) OVER w IS NULL AS open
    FROM mes_states s LEFT JOIN since ON since.path = s.path
    WHERE s.path IN (SELECT path FROM tp) AND s.ts < $data_hi AND s.ts >= $scan_lo
        AND (since.t0 IS NULL OR s.ts >= since.t0)
    WINDOW w AS (PARTITION BY s.path ORDER BY s.ts, s.received, s.event_key)
),
st AS (  -- up to run_hi: a run reaching it from the window is not shorter than microstop_s, so it counts as open
    SELECT path, a, least(st0.b, $run_hi) AS b, state, reason_code, open OR st0.b > $run_hi AS open
    FROM st0 WHERE b > a AND a < $run_hi
),
lab AS (  -- cut at run_lo and run_hi, microstop_s around the window: no run shorter than that reaches past them
    SELECT path, greatest(start_ts, $run_lo) AS la, least(end_ts, $run_hi) AS lb, reason_code AS l_reason,
           state AS l_state, ts AS l_ts, received AS l_rec, event_key AS l_key
    FROM mes_reasons
    WHERE path IN (SELECT path FROM tp) AND start_ts < $run_hi AND end_ts > $run_lo
),
rpt AS (
    SELECT DISTINCT path, t FROM (
        SELECT path, a AS t FROM st UNION ALL SELECT path, b FROM st
        UNION ALL SELECT path, la FROM lab UNION ALL SELECT path, lb FROM lab
    )
),
rseg AS (
    SELECT * FROM (SELECT path, t AS a, lead(t) OVER (PARTITION BY path ORDER BY t) AS b FROM rpt)
    WHERE b IS NOT NULL
),
rs0 AS (  -- the states as labelled (the run of stops is of these): each piece's state and whether data ends there
    SELECT rseg.path, rseg.a, rseg.b, coalesce(lab.l_state, st.state) AS eff, st.open AND rseg.b = st.b AS open
    FROM rseg
    ASOF JOIN st ON st.path = rseg.path AND rseg.a >= st.a
    LEFT JOIN lab ON lab.path = rseg.path AND lab.la <= rseg.a AND lab.lb >= rseg.b
    WHERE rseg.b <= st.b
    QUALIFY row_number() OVER (
        PARTITION BY rseg.path, rseg.a ORDER BY lab.l_ts DESC NULLS LAST, lab.l_rec DESC, lab.l_key DESC) = 1
),
rs1 AS (
    SELECT rs0.*,
        CASE WHEN eff BETWEEN 10000 AND 29999 THEN 0
             WHEN cr.cls = 'planned' THEN 1
             ELSE 2 END AS k
    FROM rs0 LEFT JOIN cr ON rs0.eff BETWEEN cr.lo AND cr.hi
),
rs2 AS (
    SELECT *, sum(chg) OVER (PARTITION BY path ORDER BY a ROWS UNBOUNDED PRECEDING) AS run
    FROM (SELECT *, CASE WHEN k IS DISTINCT FROM lag(k) OVER (PARTITION BY path ORDER BY a) THEN 1 ELSE 0 END AS chg
          FROM rs1)
),
runs AS (
    SELECT path, a, b,
           CASE WHEN k = 2 AND NOT bool_or(open) OVER r
                THEN (epoch_ms(max(b) OVER r) - epoch_ms(min(a) OVER r)) / 1000.0 END AS stop_s
    FROM rs2
    WINDOW r AS (PARTITION BY path, run)
    QUALIFY b > $lo AND a < $hi
),
shf0 AS (
    SELECT * FROM mes_shifts
    QUALIFY {LATEST_SHIFT}
),
shfa AS (
    SELECT tp.path, shf0.start_ts AS sa, shf0.end_ts AS sb, shf0.breaks
    FROM shf0 JOIN tp ON tp.path = shf0.path OR starts_with(tp.path, shf0.path || '/')
),
hs AS (SELECT DISTINCT path FROM shfa),
shf AS (SELECT * FROM shfa WHERE sa <= $hi AND sb >= $lo),  -- breaks lie inside their shift: parse only these
brk0 AS (
    SELECT path, unnest(from_json(breaks, '[{{"start_ms": "BIGINT", "end_ms": "BIGINT"}}]')) AS x FROM shf
),
brk AS (
    SELECT path, to_timestamp(0) + to_milliseconds(x.start_ms) AS ba, to_timestamp(0) + to_milliseconds(x.end_ms) AS bb
    FROM brk0
),
mnt AS (
    SELECT tp.path, w.wa AS ma, coalesce(w.wb, $data_hi) AS mb
    FROM mes_maintenance_windows w JOIN tp ON tp.path = w.path OR starts_with(tp.path, w.path || '/')
    WHERE w.wa < $hi AND coalesce(w.wb, $data_hi) > $lo
),
pts AS (
    SELECT DISTINCT path, t FROM (
        SELECT path, a AS t FROM st UNION ALL SELECT path, b FROM st
        UNION ALL SELECT path, la FROM lab UNION ALL SELECT path, lb FROM lab
        UNION ALL SELECT path, sa FROM shf UNION ALL SELECT path, sb FROM shf
        UNION ALL SELECT path, ba FROM brk UNION ALL SELECT path, bb FROM brk
        UNION ALL SELECT path, ma FROM mnt UNION ALL SELECT path, mb FROM mnt
        UNION ALL SELECT path, unnest($cuts::TIMESTAMPTZ[]) FROM tp
    ) WHERE t >= $lo AND t <= $hi
),
seg AS (
    SELECT * FROM (SELECT path, t AS a, lead(t) OVER (PARTITION BY path ORDER BY t) AS b FROM pts)
    WHERE b IS NOT NULL
),
cov AS (
    SELECT seg.path, seg.a, seg.b, st.state, st.reason_code, runs.stop_s, st.a AS stop_start,
           lab.l_reason, lab.l_state
    FROM seg
    JOIN st ON st.path = seg.path AND st.a <= seg.a AND st.b >= seg.b
    JOIN runs ON runs.path = seg.path AND runs.a <= seg.a AND runs.b >= seg.b
    LEFT JOIN lab ON lab.path = seg.path AND lab.la <= seg.a AND lab.lb >= seg.b
    QUALIFY row_number() OVER (
        PARTITION BY seg.path, seg.a ORDER BY lab.l_ts DESC NULLS LAST, lab.l_rec DESC, lab.l_key DESC) = 1
),
flag AS (
    SELECT cov.*, coalesce(l_state, state) AS eff, coalesce(l_reason, reason_code) AS reason,
        EXISTS (SELECT 1 FROM brk WHERE brk.path = cov.path AND brk.ba <= cov.a AND brk.bb >= cov.b)
            OR EXISTS (SELECT 1 FROM mnt WHERE mnt.path = cov.path AND mnt.ma <= cov.a AND mnt.mb >= cov.b) AS in_break,
        EXISTS (SELECT 1 FROM hs WHERE hs.path = cov.path) AS has_shift,
        EXISTS (SELECT 1 FROM shf WHERE shf.path = cov.path AND shf.sa <= cov.a AND shf.sb >= cov.b) AS in_shift
    FROM cov
)
SELECT path, a, b, eff, state, reason,
    CASE WHEN eff BETWEEN 10000 AND 29999 THEN 'none'
         WHEN cr.cls = 'planned' OR in_break OR (has_shift AND NOT in_shift) THEN 'planned'
         WHEN cr.cls = 'performance' THEN 'performance'
         WHEN eff BETWEEN 30000 AND 39999 OR eff < 10000 OR eff > 229999 THEN 'availability'
         WHEN stop_s < $micro THEN 'performance'
         ELSE 'availability' END AS loss,
    stop_start
FROM flag LEFT JOIN cr ON flag.eff BETWEEN cr.lo AND cr.hi
ORDER BY path, a
"""  # noqa: S608 (our SQL, one fixed fragment)


def pieces_query(
    section: MesSection,
    *,
    paths: Sequence[str],
    start: datetime,
    end: datetime,
    cuts: Sequence[datetime] = (),
    data_end: datetime | None = None,
    bounded: bool = False,
    scan_from: datetime | None = None,
) -> tuple[str, dict[str, object]]:
    """The SQL and parameters of ``pieces`` (path, start, end, state, machine state, reason, loss, stop start).

    ``data_end`` (default ``end``) is where the data stops: states from it on are not read, and the
    last state before it runs until it (``uns.mes.facts`` reads with the query's end while it cuts
    time at hour edges, so a piece is the same whatever cut it). ``bounded`` reads only the states
    from the one active at ``start - microstop_s`` on, with the same result: a stop that began
    earlier and reaches ``start`` is longer than ``microstop_s`` either way, so never a microstop.
    ``scan_from`` (from ``scan_from``) is no later than the state each path had then: the scans start
    there (the table's time order lets DuckDB skip the rest) instead of at the first state ever stored.
    """
    lows, highs, classes = loss_table(section).columns()
    params: dict[str, object] = {
        "paths": list(paths),
        "lows": lows,
        "highs": highs,
        "classes": classes,
        "micro": section.microstop_s,
        "lo": start,
        "hi": end,
        "run_lo": start - timedelta(seconds=section.microstop_s),
        "run_hi": end + timedelta(seconds=section.microstop_s),
        "data_hi": max(end, data_end or end),
        "data_lo": start - timedelta(seconds=section.microstop_s) if bounded else _BEGINNING,
        "scan_lo": scan_from if bounded and scan_from is not None else _BEGINNING,
        "cuts": [start, end, *(cut for cut in cuts if start < cut < end)],
    }
    return _PIECES, params


def pieces(
    cursor: duckdb.DuckDBPyConnection,
    section: MesSection,
    *,
    paths: Sequence[str],
    start: datetime,
    end: datetime,
    cuts: Sequence[datetime] = (),
    data_end: datetime | None = None,
    bounded: bool = False,
) -> list[Piece]:
    """Classified pieces of time of ``paths`` within ``[start, end)``, also split at ``cuts``.

    Args:
        cursor: a DuckDB cursor on the historian database.
        section: the MES settings (microstop threshold, loss classes, changeover rule).
        paths: equipment paths whose ``machine_state`` rows define time.
        start: window start (aware).
        end: window end (aware).
        cuts: extra instants to split at (group edges).
        data_end: where the data stops (default ``end``): see ``pieces_query``.
        bounded: read only the states that can matter (see ``pieces_query``).
    """
    if not paths or end <= start:
        return []
    since = scan_from(cursor, paths, start - timedelta(seconds=section.microstop_s)) if bounded else None
    sql, params = pieces_query(
        section, paths=paths, start=start, end=end, cuts=cuts, data_end=data_end, bounded=bounded, scan_from=since
    )
    rows = cursor.execute(sql, params).fetchall()
    return [
        Piece(
            path=path,
            start=a,
            end=b,
            state=int(eff),
            machine_state=int(state),
            reason_code=reason,
            loss=loss,
            stop_start=stop_start,
        )
        for path, a, b, eff, state, reason, loss, stop_start in rows
    ]


_BEGINNING = datetime(1, 1, 1, tzinfo=UTC)
_NEAR = timedelta(days=1)

_LAST_BEFORE = """SELECT path, max(ts) FROM mes_states
WHERE path IN (SELECT unnest($paths::VARCHAR[])) AND ts <= $at AND ts >= $since GROUP BY path"""


def scan_from(cursor: duckdb.DuckDBPyConnection, paths: Sequence[str], at: datetime) -> datetime:
    """The earliest of the states ``paths`` had at ``at``, else ``at``: no state before it matters from ``at`` on.

    Looked for in the day before ``at`` first (a scan of that day's rows), then, for the paths
    without a state there, in all history before it.
    """
    found = dict(cursor.execute(_LAST_BEFORE, {"paths": list(paths), "at": at, "since": at - _NEAR}).fetchall())
    missing = [path for path in paths if path not in found]
    if missing:
        found.update(cursor.execute(_LAST_BEFORE, {"paths": missing, "at": at, "since": _BEGINNING}).fetchall())
    earliest: datetime = min([at, *found.values()])
    return earliest


@dataclasses.dataclass(slots=True)
class Times:
    """Time per loss class of one entity in one window (the union view over its paths).

    Summed in whole microseconds, so the same time cut into other pieces (``uns.mes.facts``
    splits at hour edges) sums to exactly the same seconds.
    """

    covered_us: int = 0
    planned_us: int = 0
    availability_us: int = 0
    microstop_us: int = 0
    producing_us: int = 0

    @property
    def covered_s(self) -> float:
        """Time with state data."""
        return self.covered_us / 1e6

    @property
    def planned_s(self) -> float:
        """Planned downtime."""
        return self.planned_us / 1e6

    @property
    def availability_s(self) -> float:
        """Availability loss."""
        return self.availability_us / 1e6

    @property
    def microstop_s(self) -> float:
        """Performance loss stops (microstops)."""
        return self.microstop_us / 1e6

    @property
    def producing_s(self) -> float:
        """Producing time."""
        return self.producing_us / 1e6


_RANK = {"none": 0, "performance": 1, "availability": 2, "planned": 3}


def _add(times: Times, loss: str, micros: int) -> None:
    times.covered_us += micros
    if loss == "none":
        times.producing_us += micros
    elif loss == "performance":
        times.microstop_us += micros
    elif loss == "availability":
        times.availability_us += micros
    else:
        times.planned_us += micros


def add_times(times: Times, more: Times) -> None:
    """Add ``more`` into ``times``."""
    times.covered_us += more.covered_us
    times.planned_us += more.planned_us
    times.availability_us += more.availability_us
    times.microstop_us += more.microstop_us
    times.producing_us += more.producing_us


def _union(inside: Sequence[Piece], times: Times) -> None:
    """Sweep the pieces of several paths: each instant takes the best class any path has then."""
    events = sorted([(p.start, 1, p.loss) for p in inside] + [(p.end, -1, p.loss) for p in inside])
    active = dict.fromkeys(_RANK, 0)
    last: datetime | None = None
    for at, step, loss in events:
        if last is not None and at > last:
            present = [name for name, n in active.items() if n > 0]
            if present:
                _add(times, min(present, key=_RANK.__getitem__), span_us(last, at))
        active[loss] += step
        last = at


def entity_times(
    found: Sequence[Piece], *, members: Mapping[str, Sequence[str]], windows: Sequence[Window]
) -> dict[tuple[str, str], Times]:
    """Sum pieces into (entity, group) → times; an entity with several paths takes the union view.

    Args:
        found: pieces from ``pieces`` (split at every window edge).
        members: entity → the paths whose states are its time.
        windows: the groups to fill.
    """
    by_path: dict[str, list[Piece]] = {}
    for piece in sorted(found, key=lambda p: p.start):
        by_path.setdefault(piece.path, []).append(piece)
    starts = {path: [p.start for p in items] for path, items in by_path.items()}
    result: dict[tuple[str, str], Times] = {}
    for window in windows:
        times = result.setdefault((window.entity, window.group), Times())
        inside: list[Piece] = []
        for path in members.get(window.entity, ()):
            items = by_path.get(path, [])
            for piece in items[bisect.bisect_left(starts.get(path, []), window.start) :]:
                if piece.start >= window.end:
                    break
                if piece.end <= window.end:
                    inside.append(piece)
        if len({p.path for p in inside}) > 1:
            _union(inside, times)
        else:
            for piece in inside:
                _add(times, piece.loss, span_us(piece.start, piece.end))
    return result
