"""Per-hour facts of MES time: each state path's classified pieces of closed hours, kept in DuckDB for long views.

A month or year of OEE, downtime or ``current`` would otherwise rebuild every state interval of the
range (``uns.mes.intervals``) on each request: 4-9 s for a month of the demo plant. The writer
keeps the pieces of every closed UTC hour in ``mes_fact_pieces`` (the same SQL, cut at hour edges,
microseconds since 1970), and a view sums them for the whole hours of its range and computes only
the rest (the partial edges, hours not built yet or made stale) the direct way. Sums are in whole
microseconds, so both ways give exactly the same numbers.

When a fact equals the direct answer: the direct SQL reads the states before the query's end, so a
stop still running at that end is never a microstop; one that ended within ``microstop_s`` after it
may be. An hour is therefore used only when it ends ``microstop_s`` or more before the query's end,
and built only when it ends that long before the writer's clock (built from everything stored).

Invalidation (``FactBuilder.changed``, subscribed to ``MesStore.changes``, on the writer thread
before the events are acknowledged): a ``machine_state`` at ``t`` drops the hours of its path from
``t - microstop_s`` on (a stop before it may become a microstop, every later run may change); a
``downtime_reason`` the hours of its interval and ``microstop_s`` either side (the runs of stops are of the
labelled states, so a label may lengthen or cut a run next to it); a ``shift`` the hours of its span and of
the version it replaces (``uns.mes.store``: a re-sent ``shift_id``'s old span) at every path at or under it, and all
of them when it is the first shift there (time outside shifts becomes planned);
a ``maintenance_order`` the hours from the earliest time any version of the order named on, at and
under every path it was at (its planned windows are planned downtime).
Counts are facts of their own (``uns.mes.count_facts``). The classification settings (loss
ranges, microstop threshold) are part of each hour's ``rules``: hours built under other settings are
not read and are rebuilt. The edges are classified in Python (``uns.mes.edge_pieces``) unless
``bypassed``; with a memo attached (``uns.mes.memo``, the adapter's) the built hours and their sums
are read from memory, which this builder keeps exact (``ViewMemo.dropped``, ``ViewMemo.built``).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime

import duckdb
import orjson

from model.config import MesSection
from uns.clock import HOUR_US, at_epoch_us, epoch_us
from uns.mes.changes import Change
from uns.mes.count_facts import CountFacts, built_to
from uns.mes.edge_pieces import edge_pieces
from uns.mes.intervals import Piece, Times, Window, add_times, entity_times, pieces, pieces_query
from uns.mes.losses import loss_table
from uns.mes.memo import LOSSES, Sums, ViewMemo
from uns.mes.memo import of as memo_of
from uns.mes.paths import line_of

__all__ = [
    "FactBar",
    "FactBuilder",
    "Segment",
    "bypassed",
    "direct_pieces",
    "fact_bars",
    "fact_pieces",
    "facts_active",
    "plan",
    "rules_of",
    "union_path",
    "window_times",
]

log = logging.getLogger(__name__)

_FAR = datetime(2200, 1, 1, tzinfo=UTC)  # "all the data": no state is stamped this late
_BUILD_HOURS = 24 * 7  # hours per path built in one writer call: a month in ~5 calls
_USE_FACTS: contextvars.ContextVar[bool] = contextvars.ContextVar("uns_mes_facts", default=True)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS mes_fact_pieces (
        path VARCHAR NOT NULL, hour BIGINT NOT NULL, a BIGINT NOT NULL, b BIGINT NOT NULL,
        state INTEGER NOT NULL, machine_state INTEGER NOT NULL, reason VARCHAR, loss VARCHAR NOT NULL,
        stop_start BIGINT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS mes_fact_hours (path VARCHAR NOT NULL, hour BIGINT NOT NULL, rules VARCHAR NOT NULL)",
)


def rules_of(section: MesSection) -> str:
    """The classification settings the facts depend on, as one comparable string."""
    lows, highs, classes = loss_table(section).columns()
    return orjson.dumps([lows, highs, classes, section.microstop_s]).decode()


@contextlib.contextmanager
def bypassed() -> Iterator[None]:
    """Compute views the direct way inside this block (the reference the facts are checked against)."""
    token = _USE_FACTS.set(False)
    try:
        yield
    finally:
        _USE_FACTS.reset(token)


def facts_active() -> bool:
    """Whether views may read facts here (not inside ``bypassed``)."""
    return _USE_FACTS.get()


@dataclasses.dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of a view's range: answered from facts, or computed directly."""

    start: datetime
    end: datetime
    from_facts: bool


def _has_tables(cursor: duckdb.DuckDBPyConnection) -> bool:
    row = cursor.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('mes_fact_pieces', 'mes_fact_hours')"
    ).fetchone()
    return row is not None and row[0] == 2


def _hour_range(section: MesSection, start: datetime, end: datetime) -> tuple[int, int]:
    """The whole hours of ``[start, end)`` that end ``microstop_s`` or more before ``end``: ``[first, last)``."""
    return -(-epoch_us(start) // HOUR_US), (epoch_us(end) - round(section.microstop_s * 1e6)) // HOUR_US


def plan(
    cursor: duckdb.DuckDBPyConnection, section: MesSection, paths: Sequence[str], start: datetime, end: datetime
) -> list[Segment]:
    """``[start, end)`` cut into stretches of whole hours built for every path, and the rest."""
    return _plan(cursor, section, paths, start, end)[0]


def _plan(
    cursor: duckdb.DuckDBPyConnection, section: MesSection, paths: Sequence[str], start: datetime, end: datetime
) -> tuple[list[Segment], dict[int, dict[str, Sums]] | None]:
    """``plan``, and with a memo the sums of each fact hour per path it planned from (None: no memo)."""
    direct = [Segment(start, end, from_facts=False)]
    if not paths or not _USE_FACTS.get():
        return direct, None
    memo = memo_of(cursor)
    if memo is not None:
        snapshot = _memo_hours(memo, cursor, section, paths, start, end)
        return _segments(start, end, sorted(snapshot)), snapshot
    if not _has_tables(cursor):
        return direct, None
    first, last = _hour_range(section, start, end)
    if last <= first:
        return direct, None
    rows = cursor.execute(
        "SELECT hour FROM mes_fact_hours WHERE path IN (SELECT unnest($paths::VARCHAR[])) AND rules = $rules"
        " AND hour >= $first AND hour < $last GROUP BY hour HAVING count(DISTINCT path) = $n ORDER BY hour",
        {"paths": list(paths), "rules": rules_of(section), "first": first, "last": last, "n": len(set(paths))},
    ).fetchall()
    return _segments(start, end, [row[0] for row in rows]), None


def _memo_hours(
    memo: ViewMemo,
    cursor: duckdb.DuckDBPyConnection,
    section: MesSection,
    paths: Sequence[str],
    start: datetime,
    end: datetime,
) -> dict[int, dict[str, Sums]]:
    """The hours of ``[start, end)`` built for every path under today's rules, with each path's sums (a snapshot)."""
    first, last = _hour_range(section, start, end)
    if last <= first:
        return {}
    known = memo.hours(cursor, paths)
    rules = rules_of(section)
    mine = [(path, known.get(path, {})) for path in set(paths)]  # looked up once, not once per hour
    found: dict[int, dict[str, Sums]] = {}
    for hour in range(first, last):
        sums: dict[str, Sums] = {}
        for path, hours in mine:
            entry = hours.get(hour)
            if entry is None or entry[0] != rules:
                break
            sums[path] = entry[1]
        else:
            found[hour] = sums
    return found


def _segments(start: datetime, end: datetime, hours: Sequence[int]) -> list[Segment]:
    """``[start, end)`` as runs of the (sorted) fact hours and the direct stretches between them."""
    segments: list[Segment] = []
    at = start
    run: list[int] = []
    for hour in [*hours, None]:
        if run and (hour is None or hour != run[-1] + 1):
            lo, hi = at_epoch_us(run[0] * HOUR_US), at_epoch_us((run[-1] + 1) * HOUR_US)
            if lo > at:
                segments.append(Segment(at, lo, from_facts=False))
            segments.append(Segment(lo, hi, from_facts=True))
            at, run = hi, []
        if hour is not None:
            run.append(hour)
    if at < end:
        segments.append(Segment(at, end, from_facts=False))
    return segments


def direct_pieces(
    cursor: duckdb.DuckDBPyConnection,
    section: MesSection,
    segments: Sequence[Segment],
    *,
    paths: Sequence[str],
    end: datetime,
    cuts: Sequence[datetime] = (),
) -> list[Piece]:
    """Pieces of the stretches not answered from facts, as the direct query up to ``end`` sees them."""
    found: list[Piece] = []
    for segment in segments:
        if segment.from_facts:
            continue
        if _USE_FACTS.get():  # the same pieces from plain reads (``uns.mes.edge_pieces``); bypassed: the SQL
            found += edge_pieces(
                cursor, section, paths=paths, start=segment.start, end=segment.end, cuts=cuts, data_end=end
            )
        else:
            found += pieces(
                cursor, section, paths=paths, start=segment.start, end=segment.end, cuts=cuts, data_end=end,
                bounded=True,
            )  # fmt: skip
    return found


def fact_pieces(cursor: duckdb.DuckDBPyConnection, paths: Sequence[str], segments: Sequence[Segment]) -> list[Piece]:
    """The stored pieces of the stretches answered from facts (few: for timelines)."""
    ranges = [(epoch_us(s.start) // HOUR_US, epoch_us(s.end) // HOUR_US) for s in segments if s.from_facts]
    if not ranges:
        return []
    rows = cursor.execute(
        """SELECT path, a, b, state, machine_state, reason, loss, stop_start FROM mes_fact_pieces
           WHERE path IN (SELECT unnest($paths::VARCHAR[]))
             AND hour IN (SELECT unnest(range(lo, hi)) FROM (SELECT unnest($los::BIGINT[]) AS lo,
                                                                    unnest($his::BIGINT[]) AS hi))
           ORDER BY path, a""",
        {"paths": list(paths), "los": [lo for lo, _ in ranges], "his": [hi for _, hi in ranges]},
    ).fetchall()
    return [
        Piece(path=path, start=at_epoch_us(a), end=at_epoch_us(b), state=state, machine_state=machine,
              reason_code=reason, loss=loss, stop_start=at_epoch_us(stop))
        for path, a, b, state, machine, reason, loss, stop in rows
    ]  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class FactBar:
    """Lost time of one reason (its code, else its state) from facts: what a downtime bar adds up."""

    reason_code: str | None
    state: int
    """The state when there is no reason code (the bar's key); else any state of it."""
    time: tuple[tuple[int, str, int], ...]
    """(state, loss, microseconds) of availability and performance loss."""
    stops: int
    """Distinct stops (path, state interval start) in facts."""
    edge_stops: frozenset[tuple[str, datetime]]
    """Its stops a direct piece may share: begun before their fact stretch, or one of ``carried`` (a stop's
    loss pieces need not touch the stretch's edge: a planned break may lie between them and it)."""


_FACT_LOSS = """
WITH hrs AS (
    SELECT unnest(range(lo, hi)) AS hour, lo FROM (SELECT unnest($los::BIGINT[]) AS lo, unnest($his::BIGINT[]) AS hi)
)
SELECT path, reason, CASE WHEN reason IS NULL THEN state END AS code, state, loss, a, b, stop_start,
       hrs.lo * $hour_us AS stretch_lo
FROM mes_fact_pieces JOIN hrs USING (hour)
WHERE path IN (SELECT unnest($paths::VARCHAR[])) AND loss IN ('availability', 'performance')
"""
_BAR_TIME = "SELECT reason, code, state, loss, sum(b - a)::BIGINT FROM ({loss}) GROUP BY ALL"
_BAR_STOPS = """SELECT reason, code, count(DISTINCT (path, stop_start)),
    list(DISTINCT (path, stop_start)) FILTER (
        WHERE stop_start < stretch_lo OR list_contains($carried::BIGINT[], stop_start)
    )
FROM ({loss}) GROUP BY ALL"""


def fact_bars(
    cursor: duckdb.DuckDBPyConnection,
    paths: Sequence[str],
    segments: Sequence[Segment],
    *,
    carried: Collection[datetime],
) -> list[FactBar]:
    """Availability and performance loss per reason over the stretches answered from facts.

    ``carried``: the starts of the direct pieces' stops begun in a fact stretch (the stops they may share).
    """
    ranges = [(epoch_us(s.start), epoch_us(s.end)) for s in segments if s.from_facts]
    if not ranges or not paths:
        return []
    params: dict[str, object] = {
        "paths": list(paths),
        "los": [lo // HOUR_US for lo, _ in ranges],
        "his": [hi // HOUR_US for _, hi in ranges],
        "hour_us": HOUR_US,
    }
    times: dict[tuple[str | None, int | None], list[tuple[int, str, int]]] = {}
    for reason, code, state, loss, micros in cursor.execute(_BAR_TIME.format(loss=_FACT_LOSS), params).fetchall():
        times.setdefault((reason, code), []).append((int(state), str(loss), int(micros)))
    starts = sorted({epoch_us(start) for start in carried})
    stops = cursor.execute(_BAR_STOPS.format(loss=_FACT_LOSS), {**params, "carried": starts}).fetchall()
    return [
        FactBar(
            reason_code=reason,
            state=int(code) if code is not None else times[(reason, code)][0][0],
            time=tuple(times[(reason, code)]),
            stops=int(count),
            edge_stops=frozenset((str(path), at_epoch_us(int(stop))) for path, stop in touching or ()),
        )
        for reason, code, count, touching in stops
    ]


_TIMES = """
WITH
mem AS (SELECT unnest($me::VARCHAR[]) AS entity, unnest($mp::VARCHAR[]) AS path),
win AS (SELECT unnest($we::VARCHAR[]) AS entity, unnest($wg::VARCHAR[]) AS grp,
               unnest($ws::BIGINT[]) AS ws, unnest($wt::BIGINT[]) AS wt),
wh AS (SELECT *, unnest(range(ws // $h, (wt - 1) // $h + 1)) AS hour FROM win)
SELECT wh.entity, wh.grp, f.loss, sum(least(f.b, wh.wt) - greatest(f.a, wh.ws))::BIGINT
FROM wh JOIN mem ON mem.entity = wh.entity
JOIN mes_fact_pieces f ON f.path = mem.path AND f.hour = wh.hour
WHERE f.a < wh.wt AND f.b > wh.ws
GROUP BY ALL
"""
"""Time per loss class of each (entity, window) from one fact path per entity (its own, or its union's)."""

# The union view of a line's cells (``intervals._union``) as pieces of one path, per hour: an instant
# takes the best class any member has then (producing, performance, availability, planned).
_UNION = """
WITH
p AS (SELECT hour, a, b, loss FROM mes_fact_pieces
      WHERE path IN (SELECT unnest($members::VARCHAR[])) AND hour >= $lo AND hour < $hi),
ev AS (SELECT hour, a AS t, loss, 1 AS d FROM p UNION ALL SELECT hour, b, loss, -1 FROM p),
steps AS (
    SELECT hour, t,
        coalesce(sum(d) FILTER (WHERE loss = 'none'), 0) AS dn,
        coalesce(sum(d) FILTER (WHERE loss = 'performance'), 0) AS dp,
        coalesce(sum(d) FILTER (WHERE loss = 'availability'), 0) AS da,
        coalesce(sum(d) FILTER (WHERE loss = 'planned'), 0) AS dl
    FROM ev GROUP BY hour, t
),
run AS (
    SELECT hour, t, lead(t) OVER w AS t2,
        sum(dn) OVER c AS nn, sum(dp) OVER c AS np, sum(da) OVER c AS na, sum(dl) OVER c AS nl
    FROM steps
    WINDOW w AS (PARTITION BY hour ORDER BY t), c AS (PARTITION BY hour ORDER BY t ROWS UNBOUNDED PRECEDING)
)
INSERT INTO mes_fact_pieces
SELECT $union, hour, t, t2, 0, 0, NULL,
    CASE WHEN nn > 0 THEN 'none' WHEN np > 0 THEN 'performance' WHEN na > 0 THEN 'availability' ELSE 'planned' END,
    t
FROM run WHERE t2 IS NOT NULL AND nn + np + na + nl > 0
"""


def union_path(members: Sequence[str]) -> str:
    """The fact path holding the union view of several state paths (``~`` is never in a real path)."""
    digest = hashlib.blake2b("|".join(sorted(members)).encode(), digest_size=6).hexdigest()
    return f"{line_of(members[0])}/~union-{digest}"


def _unions(paths: Sequence[str]) -> dict[str, list[str]]:
    """Lines without states of their own -> their state paths (``oee.entities_under``'s line time)."""
    known = set(paths)
    groups: dict[str, list[str]] = {}
    for path in sorted(paths):
        line = line_of(path)
        if len(path.split("/")) > 4 and line not in known:
            groups.setdefault(line, []).append(path)
    return {line: members for line, members in groups.items() if len(members) > 1}


_FIELD = {"none": "producing_us", "performance": "microstop_us", "availability": "availability_us",
          "planned": "planned_us"}  # fmt: skip


def window_times(
    cursor: duckdb.DuckDBPyConnection,
    section: MesSection,
    *,
    members: Mapping[str, Sequence[str]],
    windows: Sequence[Window],
    start: datetime,
    end: datetime,
    cuts: Sequence[datetime],
) -> dict[tuple[str, str], Times]:
    """``intervals.entity_times`` of every window, from facts where they are built and directly elsewhere."""
    paths = sorted({path for group in members.values() for path in group})
    fact_path = {entity: group[0] if len(group) == 1 else union_path(group) for entity, group in members.items()}
    segments, snapshot = _plan(cursor, section, sorted(set(fact_path.values())), start, end)
    direct = direct_pieces(cursor, section, segments, paths=paths, end=end, cuts=cuts)
    result = entity_times(direct, members=members, windows=windows)
    facts = [s for s in segments if s.from_facts]
    if not facts:
        return result
    rows: list[tuple[str, str, int, int]] = []
    for window in windows:
        for segment in facts:
            lo, hi = max(window.start, segment.start), min(window.end, segment.end)
            if lo < hi:
                rows.append((window.entity, window.group, epoch_us(lo), epoch_us(hi)))
    if not rows:
        return result
    if snapshot is not None and all(a % HOUR_US == 0 and b % HOUR_US == 0 for _, _, a, b in rows):
        for entity, group, a, b in rows:  # whole hours: their sums (a window cutting an hour: its pieces, below)
            totals = [0, 0, 0, 0]
            for hour in range(a // HOUR_US, b // HOUR_US):
                for index, micros in enumerate(snapshot[hour][fact_path[entity]]):
                    totals[index] += micros
            for loss, micros in zip(LOSSES, totals, strict=True):
                if micros:
                    _add_loss(result.setdefault((entity, group), Times()), loss, micros)
        return result
    pairs = list(fact_path.items())
    found = cursor.execute(
        _TIMES,
        {
            "me": [entity for entity, _ in pairs], "mp": [path for _, path in pairs],
            "we": [r[0] for r in rows], "wg": [r[1] for r in rows], "ws": [r[2] for r in rows],
            "wt": [r[3] for r in rows], "h": HOUR_US,
        },
    ).fetchall()  # fmt: skip
    for entity, group, loss, micros in found:
        _add_loss(result.setdefault((entity, group), Times()), loss, int(micros))
    return result


def _add_loss(times: Times, loss: str, micros: int) -> None:
    more = Times()
    setattr(more, _FIELD[loss], micros)
    more.covered_us = micros
    add_times(times, more)


class FactBuilder:
    """Keeps ``mes_fact_pieces`` built for closed hours and drops what stored events make stale.

    Lives on the writer thread with the writer's connection: ``changed`` is a ``ChangeFeed``
    listener, ``build`` is called after commits and builds at most one chunk of hours per call.
    The file's one builder: it remembers the newest hour built (read from the file, then its own
    builds) to skip the drops past it, where no facts are.
    """

    def __init__(
        self, connection: duckdb.DuckDBPyConnection, section: MesSection, *, memo: ViewMemo | None = None
    ) -> None:
        """``memo``: told of every hour dropped or built, so it never serves one DuckDB no longer holds."""
        self._connection = connection
        self._memo = memo
        self._section = section
        self._rules = rules_of(section)
        self._micro_us = round(section.microstop_s * 1e6)
        for statement in _SCHEMA:
            connection.execute(statement)
        shifted = connection.execute("SELECT DISTINCT path FROM mes_shifts").fetchall()
        self._shifted = {row[0] for row in shifted}
        self._counts = CountFacts(connection, memo=memo)
        self._built_to = built_to(connection, "mes_fact_hours")

    def changed(self, changes: Sequence[Change]) -> None:
        """Drop the fact hours the committed events make stale (a ``ChangeFeed`` listener)."""
        self._counts.changed(changes)
        for change in changes:
            if change.event == "machine_state":
                start = None if change.start_ms is None else change.start_ms * 1000 - self._micro_us
                self._drop(change.path, start, None, below=False)
            elif change.event == "downtime_reason":  # and microstop_s around it: the runs of stops it may change
                start, end = _ms_us(change.start_ms), _ms_us(change.end_ms)
                start = None if start is None else start - self._micro_us
                end = None if end is None else end + self._micro_us
                self._drop(change.path, start, end, below=False)
            elif change.event == "shift":
                first = change.path not in self._shifted
                self._shifted.add(change.path)
                if first:  # time outside shifts turns planned at every path under it
                    self._drop(change.path, None, None, below=True)
                else:
                    self._drop(change.path, _ms_us(change.start_ms), _ms_us(change.end_ms), below=True)
            elif change.event == "maintenance_order":  # a planned order's windows, at and under its machine
                self._drop(change.path, _ms_us(change.start_ms), _ms_us(change.end_ms), below=True)

    def _drop(self, path: str, start_us: int | None, end_us: int | None, *, below: bool) -> None:
        lo = None if start_us is None else start_us // HOUR_US
        hi = None if end_us is None else -(-end_us // HOUR_US)
        # the path, its line's unions (they hold its time), and with ``below`` every path under it
        where = "(path = $p OR starts_with(path, $u)" + (" OR starts_with(path, $p || '/'))" if below else ")")
        span = "($lo IS NULL OR hour >= $lo) AND ($hi IS NULL OR hour < $hi)"
        params = {"p": path, "u": line_of(path) + "/~union", "lo": lo, "hi": hi}
        if lo is None or lo < self._built_to:  # no hour from the newest built on holds facts: nothing to delete
            for table in ("mes_fact_hours", "mes_fact_pieces"):
                self._connection.execute(f"DELETE FROM {table} WHERE {where} AND {span}", params)  # noqa: S608 (ours)
        if self._memo is not None:
            union = line_of(path) + "/~union"

            def touched(other: str) -> bool:  # the WHERE above
                return other == path or other.startswith(union) or (below and other.startswith(path + "/"))

            self._memo.dropped(touched, lo, hi)

    def build(self, now: datetime, *, hours: int = _BUILD_HOURS) -> int:
        """Build the oldest missing closed hours of states and counts (at most ``hours`` of each); returns how many."""
        return self._build_states(now, hours) + self._counts.build(now, hours)

    def _build_states(self, now: datetime, hours: int) -> int:
        last = (epoch_us(now) - self._micro_us) // HOUR_US - 1  # the last hour ending microstop_s before now
        row = self._connection.execute(
            """WITH sp AS (SELECT path, min(epoch_us(ts)) // $h AS first FROM mes_states GROUP BY path),
               need AS (SELECT path, unnest(range(first, $last + 1)) AS hour FROM sp)
               SELECT min(hour) FROM need ANTI JOIN
                   (SELECT path, hour FROM mes_fact_hours WHERE rules = $rules) f USING (path, hour)""",
            {"h": HOUR_US, "last": last, "rules": self._rules},
        ).fetchone()
        if row is None or row[0] is None:
            return 0
        lo, hi = int(row[0]), min(int(row[0]) + hours, last + 1)
        paths = [r[0] for r in self._connection.execute("SELECT DISTINCT path FROM mes_states").fetchall()]
        start, end = at_epoch_us(lo * HOUR_US), at_epoch_us(hi * HOUR_US)
        cuts = [at_epoch_us(hour * HOUR_US) for hour in range(lo + 1, hi)]
        sql, params = pieces_query(
            self._section, paths=paths, start=start, end=end, cuts=cuts, data_end=_FAR, bounded=True
        )
        self._connection.execute("BEGIN TRANSACTION")
        try:
            for table in ("mes_fact_hours", "mes_fact_pieces"):
                self._connection.execute(f"DELETE FROM {table} WHERE hour >= ? AND hour < ?", [lo, hi])  # noqa: S608
            self._connection.execute(
                f"""INSERT INTO mes_fact_pieces SELECT path, epoch_us(a) // {HOUR_US}, epoch_us(a), epoch_us(b), eff,
                        state, reason, loss, epoch_us(stop_start) FROM ({sql})""",  # noqa: S608 (our SQL)
                params,
            )
            unions = {union_path(members): members for members in _unions(paths).values()}
            for union, members in unions.items():
                self._connection.execute(_UNION, {"union": union, "members": members, "lo": lo, "hi": hi})
            self._connection.execute(
                "INSERT INTO mes_fact_hours SELECT p, unnest(range($lo, $hi)), $rules FROM"
                " (SELECT unnest($paths::VARCHAR[]) AS p)",
                {"lo": lo, "hi": hi, "rules": self._rules, "paths": [*paths, *unions]},
            )
            self._connection.execute("COMMIT")
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._built_to = max(self._built_to, hi)
        if self._memo is not None:
            self._memo.built(lo, hi)
        log.debug("MES facts: built hours %d..%d for %d paths", lo, hi, len(paths))
        return hi - lo


def _ms_us(ms: int | None) -> int | None:
    return None if ms is None else ms * 1000
