"""Time-bucketed aggregates: which table answers which part of the range, the SQL, and gap filling."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from uns.clock import EPOCH, at_epoch_ms, epoch_us
from uns.errors import BadArgument
from uns.historian.query_types import Bucket
from uns.query.timespec import format_interval, instant
from uns.query.values import BOOLEAN_TYPES, INTEGER_TYPES, Value

__all__ = [
    "AGGREGATES",
    "FILLS",
    "MAX_BUCKETS",
    "BucketQuery",
    "KeyedGrid",
    "assemble_buckets",
    "bucket_query",
    "bucket_sql",
    "check_bucket",
    "fixed_offset",
    "plan_sources",
    "untied",
]

AGGREGATES = ("avg", "min", "max", "first", "last", "count")
"""Aggregates a bucket can carry."""

FILLS = ("none", "null", "previous")
"""Gap fill modes: leave empty buckets out, give them with None, or carry the last value."""

MAX_BUCKETS = 100_000
"""The most buckets one query may ask for."""

_ORIGIN_US = epoch_us(datetime(2000, 1, 3, tzinfo=UTC))  # time_bucket's origin (local) for buckets of microseconds
_FIXED_ZONES = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT"})
_OFFSET_STEP = timedelta(days=1)
_OFFSET_SCAN = timedelta(days=400)
_ROLLUPS = (("rollup_1m", timedelta(minutes=1)), ("rollup_1h", timedelta(hours=1)))
_RAW = "samples"
_SIZES = dict(_ROLLUPS)
# time_bucket keys are sampled at this resolution to build the grid of buckets: every UTC offset
# and DST shift is a multiple of 15 minutes, so every bucket starts on this lattice
_GRID_STEP = timedelta(minutes=15)

# Each source gives rows of one shape, (t, n, total, lo, hi, first, first_ts, last, last_ts, seq), so
# raw samples and rollup rows merge into the same buckets; seq orders the values of one millisecond.
# str.format fills in only our own names.
_RAW_SOURCE = """
SELECT ts AS t, 1::UBIGINT AS n, value AS total, value AS lo, value AS hi, value AS first, ts AS first_ts,
    value AS last, ts AS last_ts, seq
FROM samples WHERE series_id = $sid AND ts >= $lo{index} AND ts < $hi{index} AND value IS NOT NULL
"""
_ROLLUP_SOURCE = """
SELECT bucket AS t, n, avg * n AS total, min AS lo, max AS hi, first, first_ts, last, last_ts, 0::UINTEGER AS seq
FROM {table} WHERE series_id = $sid AND bucket >= $lo{index} AND bucket < $hi{index} AND n > 0
"""

_RAW_AGGREGATE = """
    SELECT {bucket} AS b, count(*) AS n, sum(value) / count(*) AS avg, min(value) AS min, max(value) AS max,
        arg_min(value, {key}) AS first, arg_max(value, {key}) AS last
    FROM samples WHERE series_id = $sid AND ts >= $lo0 AND ts < $hi0 AND value IS NOT NULL GROUP BY 1
"""

_PERFECT_HASH_BITS = (MAX_BUCKETS - 1).bit_length()

_ORDER_KEY = "epoch_us({ts})::HUGEINT * 4294967296 + seq"
"""(ts, seq) as one number in the same order (seq is a UINTEGER): arg_min/arg_max over it take half the
time they take over a struct of the two, with the same answer."""

Plan = list[tuple[str, datetime, datetime]]
"""Which table answers which part of the range: (table, start, end), newest part first."""


def check_bucket(bucket: timedelta, start: datetime, end: datetime) -> int:
    """The number of buckets ``[start, end)`` spans, at most ``MAX_BUCKETS``.

    Raises:
        BadArgument: naming ``bucket`` when it is not a positive whole number of milliseconds, or too small.
    """
    if bucket <= timedelta(0) or bucket % timedelta(milliseconds=1):
        raise BadArgument("bucket", f"must be a positive whole number of milliseconds (got {bucket})")
    count = (end - start) // bucket + 1
    if count > MAX_BUCKETS:
        raise BadArgument(
            "bucket",
            f"{format_interval(bucket)} buckets give {count} from start to end, more than {MAX_BUCKETS}:"
            " choose a larger bucket or a shorter range",
        )
    return count


def _ceil(moment: datetime, size: timedelta) -> datetime:
    """The first UTC-aligned multiple of ``size`` at or after ``moment``."""
    steps = -((EPOCH - moment) // size)
    return EPOCH + steps * size


def _cut(cursor: duckdb.DuckDBPyConnection, coarser: str, series_id: int, oldest: datetime) -> datetime:
    """Where a finer table stops answering: before its oldest row, except a part bucket no coarser row covers."""
    size = _SIZES[coarser]
    floor = oldest - (oldest - EPOCH) % size
    row = cursor.execute(
        f"SELECT count(*) FROM {coarser} WHERE series_id = ? AND bucket = ?",  # noqa: S608 - our table name
        [series_id, floor],
    ).fetchone()
    # a coarser row for the bucket holding `oldest` saw the samples retention deleted since: it wins;
    # without one (maintenance has not run, or the series began there) the finer rows are all there is
    return _ceil(oldest, size) if row and row[0] else floor


def _tiers(bucket: timedelta, tz: ZoneInfo, start: datetime, end: datetime) -> list[str]:
    """Tables that may answer, finest first: rollups whose UTC-aligned buckets nest in ours."""
    tiers = [_RAW]
    for table, size in _ROLLUPS:
        offsets = (tz.utcoffset(start) or timedelta(0), tz.utcoffset(end) or timedelta(0))
        if bucket % size == timedelta(0) and all(offset % size == timedelta(0) for offset in offsets):
            tiers.append(table)
    return tiers


def _oldest(cursor: duckdb.DuckDBPyConnection, table: str, series_id: int) -> datetime | None:
    column = "ts" if table == _RAW else "bucket"
    row = cursor.execute(f"SELECT epoch_ms(min({column})) FROM {table} WHERE series_id = ?", [series_id]).fetchone()  # noqa: S608 - table and column are ours
    if row is None or row[0] is None:
        return None
    return at_epoch_ms(row[0])


def _raw_reaches(cursor: duckdb.DuckDBPyConnection, series_id: int, start: datetime) -> bool:
    """Whether a raw sample of the series is stamped at or before ``start`` (stops at the first one found)."""
    row = cursor.execute("SELECT 1 FROM samples WHERE series_id = ? AND ts <= ? LIMIT 1", [series_id, start]).fetchone()
    return row is not None


def plan_sources(
    cursor: duckdb.DuckDBPyConnection,
    series_id: int,
    start: datetime,
    end: datetime,
    bucket: timedelta,
    tz: ZoneInfo,
) -> Plan:
    """Split ``[start, end)`` between raw samples and rollups.

    Raw samples answer from their oldest one on (rounded to the next rollup's size); only when
    the range reaches before it (retention deleted older samples) do the 1-minute rollups answer
    for the part before, and before their oldest the 1-hour rollups. A rollup is used only when
    ``bucket`` is a multiple of its size and ``tz`` is offset from UTC by whole rollup buckets at
    ``start`` and ``end``, so each rollup row falls inside exactly one of our buckets.
    """
    tiers = _tiers(bucket, tz, start, end)
    if _raw_reaches(cursor, series_id, start):  # the common case: no need for the oldest sample of all
        return [(_RAW, start, end)]
    plan: Plan = []
    high = end
    for index, table in enumerate(tiers):
        if index == len(tiers) - 1:
            plan.append((table, start, high))
            break
        oldest = _oldest(cursor, table, series_id)
        if oldest is not None and oldest <= start:
            plan.append((table, start, high))
            break
        cut = high if oldest is None else min(high, _cut(cursor, tiers[index + 1], series_id, oldest))
        if cut < high:
            plan.append((table, cut, high))
        high = cut
    return plan


def _raw_only(plan: Plan) -> bool:
    return len(plan) == 1 and plan[0][0] == _RAW


def untied(cursor: duckdb.DuckDBPyConnection, series_id: int, start: datetime, end: datetime) -> bool:
    """Whether no two samples of the series in ``[start, end)`` share a millisecond: none has a ``seq`` above 0.

    The store numbers a series' values within one millisecond 0, 1, ...; with none above 0 the
    order by ``ts`` is the order by ``(ts, seq)``. DuckDB skips every row group whose ``seq`` is 0
    throughout by its statistics, so this costs little where same-millisecond values are rare.
    """
    row = cursor.execute(
        "SELECT 1 FROM samples WHERE seq > 0 AND series_id = ? AND ts >= ? AND ts < ? LIMIT 1", [series_id, start, end]
    ).fetchone()
    return row is None


@dataclasses.dataclass(frozen=True, slots=True)
class KeyedGrid:
    """Buckets numbered ``first`` to ``stop - 1``: bucket k starts at ``k * width - shift`` µs since 1970 (UTC)."""

    first: int
    stop: int
    width: int
    shift: int

    def table(self, found: pa.Table) -> pa.Table:
        """The rows of ``bucket_sql`` (with every bucket, in order) from the ``found`` rows of its ``grid=False`` form.

        ``found`` holds (key, n, avg, min, max, first, last) of the buckets holding samples, in any
        order; the buckets without are null rows. Doing this in Arrow takes ~3 ms for 43,200 buckets
        where DuckDB's join of the key range and the sort took ~10 ms of CPU.
        """
        count = self.stop - self.first
        keys = pc.add(pc.cumulative_sum(pa.nulls(count, pa.int64()).fill_null(1)), self.first - 1)
        present = found.column(0)
        if len(found) == count and pc.all(pc.equal(present, keys)).as_py():
            rows = found  # every bucket holds samples and they came in order (DuckDB's perfect hash gives them so)
        else:  # the found row of each key in order, null where none: a found row's key appears once
            where = pc.replace_with_mask(
                pa.nulls(count, pa.uint64()), pc.is_in(keys, value_set=present), _sorted(present)
            )
            rows = found.take(where)
        begin = pc.subtract(pc.multiply(keys, self.width), self.shift)
        columns = [pc.divide(begin, 1000), pc.divide(pc.add(begin, self.width), 1000), *rows.columns[1:]]
        return pa.table(columns, names=["b", "e", "n", "avg", "lo", "hi", "first", "last"])


def _sorted(keys: pa.ChunkedArray) -> pa.Array:
    order: pa.Array = pc.sort_indices(keys)
    return order


@dataclasses.dataclass(frozen=True, slots=True)
class BucketQuery:
    """What ``bucket_query`` planned: the tables, the SQL and its parameters.

    With ``keys``, the SQL gives only the buckets holding samples (``KeyedGrid.table`` puts them on
    the grid); without, every bucket in order, as ``bucket_sql`` describes.
    """

    plan: Plan
    sql: str
    params: dict[str, object]
    keys: KeyedGrid | None = None


def bucket_query(
    cursor: duckdb.DuckDBPyConnection,
    series_id: int,
    start: datetime,
    end: datetime,
    bucket: timedelta,
    tz: ZoneInfo,
    *,
    grid: bool = True,
) -> BucketQuery:
    """Which tables answer, and the ``bucket_sql`` to run on ``cursor`` (one query's own), which this sets up.

    Keyed buckets are small integers whose range DuckDB knows from the window: up to 2^17 of them
    (``MAX_BUCKETS``) the cursor groups them in a perfect hash table, one slot per bucket indexed by
    the key, instead of hashing each sample's key (DuckDB's default stops at 2^12 keys). Without
    ``grid``, keyed buckets come without their empty ones and unordered (see ``BucketQuery``).
    """
    plan = plan_sources(cursor, series_id, start, end, bucket, tz)
    free = _raw_only(plan) and untied(cursor, series_id, plan[0][1], plan[0][2])
    cursor.execute(f"SET perfect_ht_threshold = {_PERFECT_HASH_BITS}")
    offset = None if grid else fixed_offset(tz, start, end, bucket)
    if offset is None:
        return BucketQuery(plan, *bucket_sql(series_id, plan, start, end, bucket, tz, untied=free))
    keys = _keyed_grid(start, end, bucket, offset)
    return BucketQuery(plan, *_keyed_sql(series_id, plan, keys, untied=free, grid=False), keys=keys)


def _interval_sql(bucket: timedelta) -> tuple[str, int]:
    """``bucket`` as a DuckDB interval: whole days as days (local midnight), else microseconds."""
    if bucket % timedelta(days=1) == timedelta(0):
        return "to_days($iv)", bucket.days
    return "to_microseconds($iv)", bucket // timedelta(microseconds=1)


def _grid_step(bucket: timedelta) -> timedelta:
    if bucket % _GRID_STEP == timedelta(0):
        return _GRID_STEP
    micros = _GRID_STEP // timedelta(microseconds=1)
    size = bucket // timedelta(microseconds=1)
    while micros:  # greatest common divisor: a lattice every bucket boundary lies on
        size, micros = micros, size % micros
    return timedelta(microseconds=size)


def fixed_offset(tz: ZoneInfo, start: datetime, end: datetime, bucket: timedelta) -> timedelta | None:
    """The one UTC offset ``tz`` has from a bucket before ``start`` to one after ``end``, if it has one.

    Only for buckets shorter than a day and windows from 1970 on (whole-day buckets follow local
    midnights). Offsets are read at both ends and every day between: no zone changes its offset
    and back within a day. Windows over 400 days in a zone with rules are not looked at.
    """
    if bucket >= timedelta(days=1) or start < EPOCH:
        return None
    low, high = start - bucket, end + bucket
    offset = low.astimezone(tz).utcoffset()
    if offset is None or high.astimezone(tz).utcoffset() != offset:
        return None
    if tz.key in _FIXED_ZONES:
        return offset
    if high - low > _OFFSET_SCAN:
        return None
    moment = low + _OFFSET_STEP
    while moment < high:
        if moment.astimezone(tz).utcoffset() != offset:
            return None
        moment += _OFFSET_STEP
    return offset


def _sources(plan: Plan, params: dict[str, object]) -> str:
    sources: list[str] = []
    for index, (table, low, high) in enumerate(plan):
        params[f"lo{index}"], params[f"hi{index}"] = low, high
        if table == _RAW:
            sources.append(_RAW_SOURCE.format(index=index))
        else:
            sources.append(_ROLLUP_SOURCE.format(table=table, index=index))
    return " UNION ALL ".join(sources)


def _aggregated(plan: Plan, params: dict[str, object], bucket: str, *, untied: bool) -> str:
    """The ``agg`` relation: one row per bucket holding data, keyed by ``bucket`` (an expression of ``t``).

    Raw samples alone (the plan whenever they reach back to the start) are aggregated straight from
    the table in one pass, first and last by time alone when ``untied``; only a plan with rollups
    merges rows of the common shape.
    """
    if _raw_only(plan):
        params["lo0"], params["hi0"] = plan[0][1], plan[0][2]
        key = "ts" if untied else _ORDER_KEY.format(ts="ts")
        return _RAW_AGGREGATE.format(bucket=bucket.format(t="ts"), key=key)
    first_key, last_key = _ORDER_KEY.format(ts="first_ts"), _ORDER_KEY.format(ts="last_ts")
    return f"""
    SELECT {bucket.format(t="t")} AS b, sum(n) AS n, sum(total) / sum(n) AS avg, min(lo) AS min, max(hi) AS max,
        arg_min(first, {first_key}) AS first, arg_max(last, {last_key}) AS last
    FROM ({_sources(plan, params)}) GROUP BY 1
"""  # noqa: S608 - only our own table names and SQL snippets are formatted in


def _keyed_grid(start: datetime, end: datetime, bucket: timedelta, offset: timedelta) -> KeyedGrid:
    """The keyed buckets of ``[start, end)`` in a constant UTC ``offset``.

    ``shift`` puts the boundaries where ``time_bucket`` puts them in that zone (origin 2000-01-03 local).
    """
    micro = timedelta(microseconds=1)
    width = bucket // micro
    shift = (offset // micro - _ORIGIN_US) % width
    first = (epoch_us(start) + shift) // width
    stop = -(-(epoch_us(end) + shift) // width)
    return KeyedGrid(first=first, stop=stop, width=width, shift=shift)


def _keyed_sql(
    series_id: int, plan: Plan, keys: KeyedGrid, *, untied: bool, grid: bool = True
) -> tuple[str, dict[str, object]]:
    """``bucket_sql`` in a constant offset: buckets are numbered by integer division, no zone lookup per row.

    Without ``grid``: (key, n, avg, min, max, first, last) of the buckets holding samples, unordered.
    """
    params: dict[str, object] = {"sid": series_id, "width": keys.width, "shift": keys.shift}
    agg = _aggregated(plan, params, "(epoch_us({t}) + $shift) // $width", untied=untied)
    if not grid:
        return f"SELECT b, n::BIGINT AS n, avg, min, max, first, last FROM ({agg})", params  # noqa: S608 - ours
    params["k0"], params["k1"] = keys.first, keys.stop
    sql = f"""
WITH agg AS ({agg})
SELECT (b * $width - $shift) // 1000, ((b + 1) * $width - $shift) // 1000, agg.n, agg.avg, agg.min, agg.max,
    agg.first, agg.last
FROM range($k0, $k1) AS keys(b) LEFT JOIN agg USING (b) ORDER BY b
"""  # noqa: S608 - only our own table names and SQL snippets are formatted in; user values are parameters
    return sql, params


def bucket_sql(
    series_id: int,
    plan: Plan,
    start: datetime,
    end: datetime,
    bucket: timedelta,
    tz: ZoneInfo,
    *,
    untied: bool = False,
) -> tuple[str, dict[str, object]]:
    """The query: one row per bucket key in range (empty buckets included) with its aggregates.

    Rows are (start ms, end ms, n, avg, min, max, first, last); n is None for an empty bucket.
    Where the zone keeps one offset over the window (UTC always), buckets are numbered by integer
    division of the time; elsewhere ``time_bucket`` converts each row to the zone, at ~3x the cost.
    ``untied`` says no two raw samples in the window share a millisecond (see ``untied``): first
    and last then order by ``ts`` alone, not by ``(ts, seq)``.
    """
    offset = fixed_offset(tz, start, end, bucket)
    if offset is not None:
        return _keyed_sql(series_id, plan, _keyed_grid(start, end, bucket, offset), untied=untied)
    interval, amount = _interval_sql(bucket)
    params: dict[str, object] = {
        "sid": series_id,
        "iv": amount,
        "tz": tz.key,
        "start": start,
        "end": end,
        "step": _grid_step(bucket) // timedelta(microseconds=1),
    }
    sql = f"""
WITH agg AS ({_aggregated(plan, params, "time_bucket(" + interval + ", {t}, $tz)", untied=untied)}),
keys AS (
    SELECT DISTINCT time_bucket({interval}, g, $tz) AS b
    FROM generate_series(time_bucket({interval}, $start::TIMESTAMPTZ, $tz),
        $end::TIMESTAMPTZ + 2 * {interval}, to_microseconds($step)) AS steps(g)
),
grid AS (SELECT b, lead(b) OVER (ORDER BY b) AS e FROM keys)
SELECT epoch_ms(grid.b), epoch_ms(grid.e), agg.n, agg.avg, agg.min, agg.max, agg.first, agg.last
FROM grid LEFT JOIN agg USING (b) WHERE grid.b < $end ORDER BY grid.b
"""  # noqa: S608 - only our own table names and SQL snippets are formatted in; user values are parameters
    return sql, params


def _number(datatype: str | None, value: float | None) -> Value:
    if value is None:
        return None
    if datatype in BOOLEAN_TYPES:
        return bool(value)
    if datatype in INTEGER_TYPES:
        return int(value)
    return float(value)


def assemble_buckets(
    rows: Sequence[tuple[int, int, int | None, float | None, float | None, float | None, float | None, float | None]],
    *,
    names: Sequence[str],
    fill: str,
    datatype: str | None,
    tz: ZoneInfo,
    before: Value,
) -> list[Bucket]:
    """Buckets from ``bucket_sql`` rows with the fill mode applied; ``before`` is the value before the range."""
    result: list[Bucket] = []
    carry = before
    for start_ms, end_ms, n, avg, low, high, first, last in rows:
        if n:
            values: dict[str, Value] = {
                "avg": avg,
                "min": _number(datatype, low),
                "max": _number(datatype, high),
                "first": _number(datatype, first),
                "last": _number(datatype, last),
                "count": int(n),
            }
            carry = values["last"]
        elif fill == "none":
            continue
        elif fill == "null":
            values = {name: None for name in AGGREGATES}
            values["count"] = 0
        else:
            average = float(carry) if isinstance(carry, int | float) else None
            values = {"avg": average, "min": carry, "max": carry, "first": carry, "last": carry, "count": 0}
        result.append(
            Bucket(
                start=instant(start_ms, tz),
                end=instant(end_ms, tz),
                values={name: values[name] for name in names},
                filled=not n,
            )
        )
    return result
