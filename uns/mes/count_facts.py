"""Units of OEE: counts per window from per-hour facts of closed hours, and the rest read directly.

A year of OEE read 1.1M counts and joined each to its order on every request. The writer keeps,
for every closed UTC hour, the sums of ``total`` and ``good`` per count path and order
(``mes_fact_counts``; the order is the one a count names or was filled in with, else the one
running on its line then: the same attribution as the direct read). A view reads those sums for
the whole hours of its range that no window edge cuts, and the counts of every other stretch
directly; both become the same rows (entity, group, ideal cycle time, units, good), summed in
whole numbers, so the answer is exactly the direct one. The ideal cycle time is joined at read
time (the order's product, else the fallback), so a product type or a release posted late
needs no rebuild.

Invalidation (``CountFacts.changed``, on the writer before the events are acknowledged): a stored
or re-attributed ``production_count`` drops the hour it is stamped in; a work order ``start`` or
``complete`` drops every hour from its instant on (it may change which order ran then). An hour
is built for every count path at once (``mes_fact_count_hours``), a week of hours per call. Only
closed hours are built, so the open hour, where each commit's counts land, has nothing to drop:
no ``DELETE`` runs for an hour past the newest built (two statements of ~1 ms each per commit).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import duckdb

from uns.clock import HOUR_US, at_epoch_us, epoch_us
from uns.mes.changes import Change
from uns.mes.count_memo import memo_count_rows
from uns.mes.intervals import Window
from uns.mes.memo import ViewMemo
from uns.mes.memo import of as memo_of

__all__ = ["CountFacts", "CountPath", "built_to", "count_rows"]

log = logging.getLogger(__name__)

_HOUR_MS = 3_600_000
_MAX_RANGES = 8  # direct stretches read one by one (each pruned by time); more: one read of the span

CountPath = tuple[str, str, bool, float | None, bool]
"""(entity, count path, counts as output, fallback ideal cycle time s, the product's applies)."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS mes_fact_counts (
        path VARCHAR NOT NULL, hour BIGINT NOT NULL, oid VARCHAR, total HUGEINT NOT NULL, good HUGEINT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS mes_fact_count_hours (hour BIGINT NOT NULL)",
)
"""The sums are HUGEINT, as the views' ``sum`` of the raw counts: each count may be any BIGINT, so an hour's sum may
pass 2**63 (a counter that wraps, a bad device), and a BIGINT column refused the hour and every hour after it."""

_NARROW = """SELECT column_name FROM duckdb_columns()
WHERE table_name = 'mes_fact_counts' AND column_name IN ('total', 'good') AND data_type = 'BIGINT'"""
"""The sums of a table an older hub made (BIGINT): widened in place at start, the facts kept."""

_ORD = """ord AS (
    SELECT order_id, arg_max(product_id, ts) FILTER (WHERE action = 'release') AS product_id,
           min(ts) FILTER (WHERE action = 'start') AS o_start,
           min(ts) FILTER (WHERE action = 'complete') AS o_end,
           arg_min(line, ts) FILTER (WHERE action = 'start') AS o_line
    FROM mes_work_orders GROUP BY order_id
)"""

_ATTRIBUTED = """
SELECT c.path, c.ts, c.total, c.good, coalesce(c.order_id, r.order_id) AS oid
FROM mes_counts c LEFT JOIN ord r ON c.order_id IS NULL AND r.o_line = c.line AND r.o_start <= c.ts
    AND (r.o_end IS NULL OR r.o_end > c.ts)
WHERE c.ts >= {lo} AND c.ts < {hi} {where}
QUALIFY row_number() OVER (PARTITION BY c.event_key ORDER BY r.o_start DESC NULLS LAST, r.order_id DESC) = 1
"""
"""Counts of ``[lo, hi)`` with their order: the named or filled-in one, else the one running on the line then (of
two started at one instant, the greater order id, as ``count_memo.Orders.running``; the tie was the scan's pick)."""

_FROM_FACTS = """
    UNION ALL
    SELECT path, hour * {h}, (hour + 1) * {h}, oid, total, good FROM mes_fact_counts
    WHERE hour IN (SELECT unnest($fh::BIGINT[])) AND path IN (SELECT path FROM cp)"""
_IN_PATHS = "AND c.path IN (SELECT path FROM cp)"
_NO_ROWS = """SELECT NULL::VARCHAR AS path, NULL::TIMESTAMPTZ AS ts, 0::BIGINT AS total, 0::BIGINT AS good,
    NULL::VARCHAR AS oid WHERE false"""

_UNITS = """
WITH
cp AS (SELECT unnest($ce::VARCHAR[]) AS entity, unnest($cpath::VARCHAR[]) AS path,
              unnest($cout::BOOLEAN[]) AS output, unnest($cfb::DOUBLE[]) AS fallback,
              unnest($cprod::BOOLEAN[]) AS by_product),
win AS (SELECT unnest($we::VARCHAR[]) AS entity, unnest($wg::VARCHAR[]) AS grp,
               unnest($ws::BIGINT[]) AS ws, unnest($wt::BIGINT[]) AS wt, unnest($wo::VARCHAR[]) AS wo),
{ord},
prod AS (SELECT product_id, arg_max(ideal_cycle_time_s, ts) AS ict FROM mes_products GROUP BY product_id),
src AS (
    SELECT path, epoch_us(ts) AS a, epoch_us(ts) + 1 AS b, oid, total, good FROM ({direct}) d{facts}
),
c2 AS (
    SELECT cp.entity, src.a, src.b, src.oid, coalesce(CASE WHEN cp.by_product THEN prod.ict END, cp.fallback) AS ict,
           CASE WHEN cp.output THEN src.total ELSE src.total - src.good END AS t,
           CASE WHEN cp.output THEN src.good ELSE 0 END AS g
    FROM src JOIN cp ON cp.path = src.path LEFT JOIN ord o ON o.order_id = src.oid
    LEFT JOIN prod ON prod.product_id = o.product_id
)
SELECT win.entity, win.grp, ict, sum(t), sum(g)
FROM c2 JOIN win ON win.entity = c2.entity
    AND CASE WHEN win.wo IS NULL THEN c2.a >= win.ws AND c2.b <= win.wt ELSE c2.oid = win.wo END
GROUP BY ALL
"""
# a direct count is the instant [ts, ts + 1 µs), a fact the hour: in a window when it lies within it;
# units per ideal cycle time, whole numbers: the caller sums ideal time in Python in one order


def _has_tables(cursor: duckdb.DuckDBPyConnection) -> bool:
    row = cursor.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('mes_fact_counts', 'mes_fact_count_hours')"
    ).fetchone()
    return row is not None and row[0] == 2


def _plan(
    cursor: duckdb.DuckDBPyConnection,
    lo: datetime,
    hi: datetime,
    cuts: Sequence[datetime],
    *,
    use_facts: bool,
    memo: ViewMemo | None = None,
) -> tuple[list[int], list[tuple[int, int]]]:
    """The built hours of ``[lo, hi)`` no cut falls inside, and the stretches (µs) to read directly."""
    lo_us, hi_us = epoch_us(lo), epoch_us(hi)
    first, last = -(-lo_us // HOUR_US), hi_us // HOUR_US
    hours: list[int] = []
    cut = {epoch_us(c) // HOUR_US for c in cuts if epoch_us(c) % HOUR_US}  # hours a window edge falls inside
    if use_facts and last > first and memo is not None:
        built = memo.count_hours(cursor)
        hours = [h for h in range(first, last) if h in built and h not in cut]
    elif use_facts and last > first and _has_tables(cursor):
        rows = cursor.execute(
            "SELECT DISTINCT hour FROM mes_fact_count_hours WHERE hour >= $a AND hour < $b ORDER BY hour",
            {"a": first, "b": last},
        ).fetchall()
        hours = [int(h) for (h,) in rows if int(h) not in cut]
    direct: list[tuple[int, int]] = []
    at = lo_us
    for hour in [*hours, None]:
        until = hi_us if hour is None else hour * HOUR_US
        if until > at:
            direct.append((at, until))
        if hour is not None:
            at = (hour + 1) * HOUR_US
    return hours, direct


def count_rows(
    cursor: duckdb.DuckDBPyConnection,
    paths: Sequence[CountPath],
    windows: Sequence[Window],
    *,
    span: tuple[datetime, datetime],
    use_facts: bool = True,
) -> list[tuple[str, str, float | None, int, int]]:
    """(entity, group, ideal cycle time, units, good) of each window: the counts in ``span`` of its time or order."""
    if not paths or not windows:
        return []
    cuts = [edge for w in windows if w.order is None for edge in (w.start, w.end)]
    memo = memo_of(cursor) if use_facts else None
    hours, direct = _plan(cursor, span[0], span[1], cuts, use_facts=use_facts, memo=memo)
    if memo is not None:  # the same rows, joined in Python (``uns.mes.count_memo``)
        return memo_count_rows(cursor, memo, paths, windows, hours=hours, direct=direct)
    params: dict[str, object] = {
        "ce": [p[0] for p in paths], "cpath": [p[1] for p in paths], "cout": [p[2] for p in paths],
        "cfb": [p[3] for p in paths], "cprod": [p[4] for p in paths],
        "we": [w.entity for w in windows], "wg": [w.group for w in windows],
        "ws": [epoch_us(w.start) for w in windows], "wt": [epoch_us(w.end) for w in windows],
        "wo": [w.order for w in windows],
    }  # fmt: skip
    if hours:
        params["fh"] = hours
    if len(direct) > _MAX_RANGES:  # many small gaps: one read of the span, facts' hours left out
        direct = [(direct[0][0], direct[-1][1])]
        where = _IN_PATHS + " AND NOT list_contains($fh, epoch_us(c.ts) // 3600000000)"
    else:
        where = _IN_PATHS
    parts = []
    for k, (a, b) in enumerate(direct):
        params[f"lo{k}"], params[f"hi{k}"] = at_epoch_us(a), at_epoch_us(b)
        parts.append(_ATTRIBUTED.format(lo=f"$lo{k}", hi=f"$hi{k}", where=where))
    sql = _UNITS.format(
        ord=_ORD,
        direct=" UNION ALL ".join(parts) or _NO_ROWS,
        facts=_FROM_FACTS.format(h=HOUR_US) if hours else "",
    )
    rows = cursor.execute(sql, params).fetchall()
    return [(str(e), str(g), None if ict is None else float(ict), int(t), int(good)) for e, g, ict, t, good in rows]


def built_to(connection: duckdb.DuckDBPyConnection, hours: str) -> int:
    """One past the newest hour the ``hours`` table records as built (0 when none is): no fact row from there on."""
    (row,) = connection.execute(f"SELECT coalesce(max(hour) + 1, 0) FROM {hours}").fetchall()  # noqa: S608 (ours)
    return int(row[0])


class CountFacts:
    """Keeps ``mes_fact_counts`` built for closed hours and drops the hours stored events change (writer thread)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, *, memo: ViewMemo | None = None) -> None:
        """``memo``: told of every hour dropped or built (``uns.mes.memo``)."""
        self._connection = connection
        self._memo = memo
        for statement in _SCHEMA:
            connection.execute(statement)
        for (column,) in connection.execute(_NARROW).fetchall():
            connection.execute(f"ALTER TABLE mes_fact_counts ALTER COLUMN {column} TYPE HUGEINT")  # ours: total, good
            log.info("mes: count facts' %s widened from BIGINT to HUGEINT (a table an older uns-hub made)", column)
        self._built_to = built_to(connection, "mes_fact_count_hours")

    def changed(self, changes: Sequence[Change]) -> None:
        """Drop the hours the committed events make stale (a ``ChangeFeed`` listener's part)."""
        drop: set[int] = set()
        since: int | None = None
        for change in changes:
            if change.start_ms is None:
                continue
            if change.event == "production_count":
                drop.add(change.start_ms // _HOUR_MS)
            elif change.event == "work_order" and change.end_ms is None:  # a start or complete from here on
                hour = change.start_ms // _HOUR_MS
                since = hour if since is None else min(since, hour)
        # no hour from the newest built on holds facts: the open hour's counts (each commit's) drop nothing
        built = self._built_to
        if since is not None and since < built:
            for table in ("mes_fact_count_hours", "mes_fact_counts"):
                self._connection.execute(f"DELETE FROM {table} WHERE hour >= ?", [since])  # noqa: S608 (ours)
        earlier = sorted(hour for hour in drop if (since is None or hour < since) and hour < built)
        if earlier:
            for table in ("mes_fact_count_hours", "mes_fact_counts"):
                self._connection.execute(
                    f"DELETE FROM {table} WHERE hour IN (SELECT unnest(?::BIGINT[]))",  # noqa: S608 (ours)
                    [earlier],
                )
        # the memo after DuckDB: a load that read the dropped hours before the DELETE is not kept (its generation
        # moved), and one that starts now reads without them; told first, a load in between would keep them
        if self._memo is not None and (drop or since is not None):
            self._memo.counts_dropped(drop, since)

    def build(self, now: datetime, hours: int) -> int:
        """Build the oldest missing closed hours (at most ``hours``); returns how many were built."""
        last = epoch_us(now) // HOUR_US - 1  # the last closed hour
        row = self._connection.execute(
            """WITH need AS (SELECT unnest(range(min(epoch_us(ts)) // $h, $last + 1)) AS hour FROM mes_counts)
               SELECT min(hour) FROM need ANTI JOIN mes_fact_count_hours USING (hour)""",
            {"h": HOUR_US, "last": last},
        ).fetchone()
        if row is None or row[0] is None:
            return 0
        lo = int(row[0])
        hi = min(lo + hours, last + 1)
        attributed = _ATTRIBUTED.format(lo="$lo", hi="$hi", where="")
        self._connection.execute("BEGIN TRANSACTION")
        try:
            for table in ("mes_fact_count_hours", "mes_fact_counts"):
                self._connection.execute(f"DELETE FROM {table} WHERE hour >= ? AND hour < ?", [lo, hi])  # noqa: S608
            self._connection.execute(
                f"""INSERT INTO mes_fact_counts
                    WITH {_ORD} SELECT path, epoch_us(ts) // {HOUR_US}, oid, sum(total), sum(good)
                    FROM ({attributed}) GROUP BY ALL""",  # noqa: S608 (our SQL)
                {"lo": at_epoch_us(lo * HOUR_US), "hi": at_epoch_us(hi * HOUR_US)},
            )
            self._connection.execute(
                "INSERT INTO mes_fact_count_hours SELECT unnest(range($lo, $hi))", {"lo": lo, "hi": hi}
            )
            self._connection.execute("COMMIT")
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._built_to = max(self._built_to, hi)
        if self._memo is not None:
            self._memo.counts_built()
        return hi - lo
