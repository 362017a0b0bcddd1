"""The historian's read API: series, latest values, raw samples, buckets, state durations, as-of joins.

Every method is synchronous and opens its own reader cursor, so callers run it with
``asyncio.to_thread``. Times going in must carry a time zone; times coming out are in UTC or in
the ``tz`` asked for. Ranges are half-open: ``start <= ts < end``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from uns.clock import utc_now
from uns.errors import LIST_SERIES, BadArgument, HistorianError, UnknownSeries
from uns.historian.query_buckets import AGGREGATES, FILLS, assemble_buckets, bucket_query, check_bucket
from uns.historian.query_types import AsOfRow, Bucket, DeadLetter, SeriesInfo, StateDuration, TableCount
from uns.query.args import check_limit
from uns.query.timespec import UTC_ZONE, checked_window, instant
from uns.query.values import (
    STATE_TYPES,
    LastValue,
    Point,
    Value,
    is_filter,
    last_values,
    stored_points,
    topic_condition,
    typed_value,
)
from uns.store.database import Database

__all__ = ["AggregateTable", "AsOfTable", "History", "RawTable"]

log = logging.getLogger(__name__)

_TIMED_TABLES = {
    "series": "first_seen",
    "samples": "ts",
    "latest": "ts",
    "mes_events": "ts",
    "dead_letters": "received",
    "rollup_1m": "bucket",
    "rollup_1h": "bucket",
}


class History:
    """Read queries over one historian database.

    Args:
        database: the open historian database (read-write or read-only).
        clock: the current instant, tz-aware; ``state_durations`` ends the last state at it.
    """

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._database = database
        self._clock = clock

    def now(self) -> datetime:
        """The current instant by this history's clock (``now`` and ``-15m`` are relative to it)."""
        return self._clock()

    def _cursor(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self._database.reading("query", error=HistorianError)

    def _series_of(self, cursor: duckdb.DuckDBPyConnection, topic: str, field: str = "topic") -> tuple[int, str | None]:
        if is_filter(topic):
            raise BadArgument(field, f"{topic!r} is a filter; this query takes one topic ({LIST_SERIES})")
        row = cursor.execute("SELECT series_id, datatype FROM series WHERE topic = ?", [topic]).fetchone()
        if row is None:
            raise UnknownSeries(topic, field=field)
        return int(row[0]), row[1]

    def series(self, match: str = "#") -> list[SeriesInfo]:
        """Every stored series whose topic matches the MQTT filter, ordered by topic."""
        condition, params = topic_condition("topic", [match])
        with self._cursor() as cursor:
            columns = "topic, path, class, metric, datatype, unit, unbound, epoch_ms(first_seen)"
            sql = f"SELECT {columns} FROM series WHERE {condition} ORDER BY topic"  # noqa: S608 (only ? placeholders)
            rows = cursor.execute(sql, params).fetchall()
        return [
            SeriesInfo(
                topic=topic, path=path, class_=klass, metric=metric, datatype=datatype, unit=unit,
                unbound=bool(unbound), first_seen=instant(first_seen, UTC_ZONE),
            )
            for topic, path, klass, metric, datatype, unit, unbound, first_seen in rows
        ]  # fmt: skip

    def last(self, match: str | Sequence[str]) -> list[LastValue]:
        """The newest value of every series matching any of the topics or filters, ordered by topic.

        Raises:
            UnknownSeries: for a plain topic (no wildcard) that names no series.
        """
        filters = [match] if isinstance(match, str) else list(match)
        condition, params = topic_condition("s.topic", filters)
        with self._cursor() as cursor:
            rows = cursor.execute(_LAST_SQL.format(condition=condition), params).fetchall()
        found = {row[0] for row in rows}
        for text in filters:
            if not is_filter(text) and text not in found:
                raise UnknownSeries(text, field="match")
        return last_values(rows)

    def raw(
        self, topic: str, start: datetime, end: datetime, *, limit: int = 10_000, tz: ZoneInfo = UTC_ZONE
    ) -> list[Point]:
        """The samples of one series in ``[start, end)``, oldest first, at most ``limit`` of them."""
        start, end = checked_window(start, end)
        check_limit(limit)
        with self._cursor() as cursor:
            series_id, datatype = self._series_of(cursor, topic)
            rows = cursor.execute(_RAW_SQL, [series_id, start, end, limit]).fetchall()
        return stored_points(rows, datatype, tz)

    def raw_table(self, topic: str, start: datetime, end: datetime, *, limit: int = 10_000) -> RawTable:
        """What ``raw`` answers, as Arrow columns (ts ms, value, value_text, value_json, quality, historical)."""
        start, end = checked_window(start, end)
        check_limit(limit)
        with self._cursor() as cursor:
            series_id, datatype = self._series_of(cursor, topic)
            table = _arrow(cursor, _RAW_SQL, [series_id, start, end, limit])
        return RawTable(table=table, datatype=datatype)

    def aggregate(
        self,
        topic: str,
        start: datetime,
        end: datetime,
        *,
        bucket: timedelta,
        aggregates: Sequence[str] = AGGREGATES,
        fill: str = "null",
        tz: ZoneInfo = UTC_ZONE,
    ) -> list[Bucket]:
        """One series in time buckets aligned in ``tz`` (a 1-day bucket starts at local midnight).

        Aggregates are over numeric values (booleans as 0/1): ``avg`` (sample mean), ``min``,
        ``max``, ``first``, ``last`` and ``count``. Buckets without a numeric sample are left out
        (``fill="none"``), given with None (``"null"``) or given the last value before them
        (``"previous"``). Where raw samples are already deleted by retention, the 1-minute or
        1-hour rollups answer instead, when ``bucket`` is a multiple of theirs.

        Raises:
            BadArgument: naming ``bucket`` for more than 100 000 buckets, ``agg`` or ``fill``.
        """
        start, end = checked_window(start, end)
        names = _checked_aggregates(aggregates, fill, bucket, start, end)
        with self._cursor() as cursor:
            series_id, datatype = self._series_of(cursor, topic)
            query = bucket_query(cursor, series_id, start, end, bucket, tz)
            rows = cursor.execute(query.sql, query.params).fetchall()
            found = _value_before(cursor, series_id, start) if fill == "previous" else None
            before: Value = typed_value(datatype, found, None, None)
        log.debug("aggregate %s from %s", topic, ", ".join(f"{table} [{lo}, {hi})" for table, lo, hi in query.plan))
        return assemble_buckets(rows, names=names, fill=fill, datatype=datatype, tz=tz, before=before)

    def aggregate_table(
        self,
        topic: str,
        start: datetime,
        end: datetime,
        *,
        bucket: timedelta,
        aggregates: Sequence[str] = AGGREGATES,
        fill: str = "null",
        tz: ZoneInfo = UTC_ZONE,
    ) -> AggregateTable:
        """What ``aggregate`` answers before typing and filling: one Arrow row per bucket key.

        Columns: start ms, end ms, n (None or 0 for an empty bucket), avg, min, max, first, last.
        """
        start, end = checked_window(start, end)
        names = _checked_aggregates(aggregates, fill, bucket, start, end)
        with self._cursor() as cursor:
            series_id, datatype = self._series_of(cursor, topic)
            query = bucket_query(cursor, series_id, start, end, bucket, tz, grid=False)
            if query.keys is None:
                table = _arrow(cursor, _BUCKET_TABLE_SQL.format(sql=query.sql), query.params)
            else:  # the empty buckets are put in by Arrow, cheaper than DuckDB's join and sort
                table = query.keys.table(_arrow(cursor, query.sql, query.params))
            before = _value_before(cursor, series_id, start) if fill == "previous" else None
        return AggregateTable(table=table, datatype=datatype, names=names, fill=fill, before=before)

    def state_durations(self, match_or_topic: str, start: datetime, end: datetime) -> list[StateDuration]:
        """Per state-like series (integer, string, boolean) and value: seconds held and times entered.

        The state active at ``start`` (the last sample before it) counts from ``start``; the last
        state runs to ``min(end, now)``. ``match_or_topic`` may be an MQTT filter, so one call
        covers a whole line. Ordered by topic, then longest first.

        Raises:
            UnknownSeries: when nothing state-like matches.
            BadArgument: naming ``match`` for a single topic that is not state-like.
        """
        start, end = checked_window(start, end)
        stop = min(end, self.now().astimezone(UTC))
        condition, params = topic_condition("topic", [match_or_topic])
        with self._cursor() as cursor:
            sql = f"SELECT series_id, topic, datatype FROM series WHERE {condition}"  # noqa: S608 (only ? placeholders)
            found = cursor.execute(sql, params).fetchall()
            states = {int(sid): (topic, datatype) for sid, topic, datatype in found if datatype in STATE_TYPES}
            if not is_filter(match_or_topic) and found and not states:
                raise BadArgument(
                    "match", f"{match_or_topic} holds {found[0][2]} values, not states (integer, string or boolean)"
                )
            if not states:
                raise UnknownSeries(
                    match_or_topic, what="state-like series (integer, string, boolean) matching", field="match"
                )
            if stop <= start:
                return []
            rows = cursor.execute(_STATES_SQL, {"ids": list(states), "start": start, "stop": stop}).fetchall()
        durations = [
            StateDuration(
                topic=states[sid][0],
                value=typed_value(states[sid][1], value, text, None),
                seconds=millis / 1000.0,
                entries=int(entries),
            )
            for sid, value, text, millis, entries in rows
        ]
        return sorted(durations, key=lambda item: (item.topic, -item.seconds))

    def asof(
        self,
        topic: str,
        start: datetime,
        end: datetime,
        *,
        context: Sequence[str],
        limit: int = 10_000,
        tz: ZoneInfo = UTC_ZONE,
    ) -> list[AsOfRow]:
        """Each sample of ``topic`` in range with the value of every context topic active at its instant.

        A context topic is a stored series (its latest sample at or before the instant) or an MES
        event topic ``.../mes/<event>`` (the JSON body of its latest event at or before the instant):
        this is how a value gets the work order, shift and machine state it was made under.

        Raises:
            UnknownSeries: for a topic or context topic that names no series and no MES events.
        """
        start, end = checked_window(start, end)
        check_limit(limit)
        contexts = list(dict.fromkeys(context))
        with self._cursor() as cursor:
            series_id, datatype = self._series_of(cursor, topic)
            sql, params, types = self._asof_query(cursor, series_id, start, end, contexts, limit)
            rows = cursor.execute(sql, params).fetchall()
        result: list[AsOfRow] = []
        for row in rows:
            values = {
                name: typed_value(types[i], row[5 + 3 * i], row[6 + 3 * i], row[7 + 3 * i])
                for i, name in enumerate(contexts)
            }
            result.append(
                AsOfRow(ts=instant(row[0], tz), value=typed_value(datatype, *row[1:4]), quality=row[4], context=values)
            )
        return result

    def asof_table(
        self, topic: str, start: datetime, end: datetime, *, context: Sequence[str], limit: int = 10_000
    ) -> AsOfTable:
        """What ``asof`` answers, as Arrow columns.

        Columns: ts ms, value, value_text, value_json, quality, then value, value_text and
        value_json per context topic (in the order given, repeats dropped).
        """
        start, end = checked_window(start, end)
        check_limit(limit)
        contexts = list(dict.fromkeys(context))
        with self._cursor() as cursor:
            series_id, datatype = self._series_of(cursor, topic)
            sql, params, types = self._asof_query(cursor, series_id, start, end, contexts, limit)
            table = _arrow(cursor, sql, params)
        return AsOfTable(table=table, datatype=datatype, contexts=tuple(zip(contexts, types, strict=True)))

    def _asof_query(
        self,
        cursor: duckdb.DuckDBPyConnection,
        series_id: int,
        start: datetime,
        end: datetime,
        contexts: Sequence[str],
        limit: int,
    ) -> tuple[str, dict[str, object], list[str | None]]:
        """The as-of join's SQL and parameters, and each context topic's datatype (None for MES events)."""
        params: dict[str, object] = {"sid": series_id, "start": start, "end": end, "limit": limit}
        joins: list[str] = []
        types: list[str | None] = []
        for index, name in enumerate(contexts):
            joins.append(self._context_source(cursor, name, index))
            row = cursor.execute("SELECT datatype, series_id FROM series WHERE topic = ?", [name]).fetchone()
            types.append(row[0] if row else None)
            if row is None:  # MES events
                params[f"c{index}"] = name
            else:
                params[f"cid{index}"], params[f"cfrom{index}"] = row[1], _context_from(cursor, row[1], start)
        columns = "".join(f", c{i}.value, c{i}.value_text, c{i}.value_json" for i in range(len(contexts)))
        asof_joins = "".join(f" ASOF LEFT JOIN {source} c{i} ON m.ts >= c{i}.ts" for i, source in enumerate(joins))
        return _ASOF_SQL.format(columns=columns, joins=asof_joins), params, types

    def _context_source(self, cursor: duckdb.DuckDBPyConnection, name: str, index: int) -> str:
        """The SQL relation (ts, value, value_text, value_json) a context topic is read from."""
        if is_filter(name):
            raise BadArgument("context", f"{name!r} is a filter; give one topic per context")
        if cursor.execute("SELECT 1 FROM series WHERE topic = ?", [name]).fetchone():
            return _CONTEXT_SERIES_SQL.format(index=index)
        if cursor.execute("SELECT 1 FROM mes_events WHERE topic = ? LIMIT 1", [name]).fetchone():
            return _CONTEXT_MES_SQL.format(index=index)
        raise UnknownSeries(name, what="series or MES events on", field="context")

    def dead_letters(self, limit: int = 100, *, tz: ZoneInfo = UTC_ZONE) -> list[DeadLetter]:
        """The newest messages the historian refused, newest first."""
        check_limit(limit)
        with self._cursor() as cursor:
            rows = cursor.execute(
                "SELECT epoch_ms(received), topic, field, reason, payload FROM dead_letters"
                " ORDER BY received DESC LIMIT ?",
                [limit],
            ).fetchall()
        return [
            DeadLetter(received=instant(received, tz), topic=topic, field=field, reason=reason, payload=payload)
            for received, topic, field, reason, payload in rows
        ]

    def counts(self, *, tz: ZoneInfo = UTC_ZONE) -> dict[str, TableCount]:
        """Rows per table with the oldest and newest time in it, for health pages."""
        sql = " UNION ALL ".join(
            _COUNT_SQL.format(table=table, column=column) for table, column in _TIMED_TABLES.items()
        )
        with self._cursor() as cursor:
            rows = cursor.execute(sql).fetchall()
        return {
            table: TableCount(
                rows=int(rows_),
                oldest=None if oldest is None else instant(oldest, tz),
                newest=None if newest is None else instant(newest, tz),
            )
            for table, rows_, oldest, newest in rows
        }


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RawTable:
    """Raw samples as Arrow columns, with the series' datatype that types their values."""

    table: pa.Table
    datatype: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AggregateTable:
    """Bucket rows as Arrow columns, with what typing and filling them needs.

    ``names`` are the aggregates asked for; ``before`` is the stored (untyped) value before the range.
    """

    table: pa.Table
    datatype: str | None
    names: tuple[str, ...]
    fill: str
    before: float | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AsOfTable:
    """As-of rows as Arrow columns; ``contexts`` holds (topic, datatype) per context, in column order."""

    table: pa.Table
    datatype: str | None
    contexts: tuple[tuple[str, str | None], ...]


def _context_from(cursor: duckdb.DuckDBPyConnection, series_id: int, start: datetime) -> datetime:
    """The time of a context series' last sample at or before ``start`` (else ``start``): where its join reads from.

    Searched in the day before ``start`` first (a scan of that day's row groups), then all before it;
    without this bound the join read every sample of the context series up to the end.
    """
    for since in (start - _CONTEXT_SEARCH, _BEGINNING):
        row = cursor.execute(
            "SELECT max(ts) FROM samples WHERE series_id = $id AND ts <= $start AND ts >= $since",
            {"id": series_id, "start": start, "since": since},
        ).fetchall()
        if row[0][0] is not None:
            found: datetime = row[0][0]
            return found
    return start


def _arrow(cursor: duckdb.DuckDBPyConnection, sql: str, params: object) -> pa.Table:
    """The query's rows as an Arrow table, straight from DuckDB (``execute`` would copy them once more)."""
    cursor.complete()  # the lookups before left a result open
    return cursor.sql(sql, params=params).to_arrow_table()


def _checked_aggregates(
    aggregates: Sequence[str], fill: str, bucket: timedelta, start: datetime, end: datetime
) -> tuple[str, ...]:
    names = tuple(aggregates)
    unknown = [name for name in names if name not in AGGREGATES]
    if unknown or not names:
        raise BadArgument("agg", f"unknown aggregate {unknown or names!r}; choose from {', '.join(AGGREGATES)}")
    if fill not in FILLS:
        raise BadArgument("fill", f"unknown fill {fill!r}; choose from {', '.join(FILLS)}")
    check_bucket(bucket, start, end)
    return names


def _value_before(cursor: duckdb.DuckDBPyConnection, series_id: int, start: datetime) -> float | None:
    """The series' last stored number before ``start``: what ``fill=previous`` carries in."""
    found = cursor.execute(
        "SELECT value FROM samples WHERE series_id = ? AND ts < ? AND value IS NOT NULL"
        " ORDER BY ts DESC, seq DESC LIMIT 1",
        [series_id, start],
    ).fetchone()
    return None if found is None else float(found[0])


# SQL templates: str.format fills in only our own snippets (placeholders, aliases, table names);
# every user value travels as a parameter.
_RAW_SQL = (
    "SELECT epoch_ms(ts), value, value_text, value_json, quality::VARCHAR, historical FROM samples"
    " WHERE series_id = ? AND ts >= ? AND ts < ? ORDER BY ts, seq LIMIT ?"
)
# bucket_sql's rows with named columns and n as BIGINT (sum() gives HUGEINT)
_BUCKET_TABLE_SQL = (
    "SELECT b, e, n::BIGINT AS n, avg, lo, hi, first, last FROM ({sql}) t(b, e, n, avg, lo, hi, first, last)"
)
_LAST_SQL = """
SELECT s.topic, epoch_ms(l.ts), l.value, l.value_text, l.value_json, l.quality::VARCHAR, l.historical, s.datatype,
    s.unit
FROM latest l JOIN series s USING (series_id) WHERE {condition} ORDER BY s.topic
"""
_ASOF_SQL = """
SELECT epoch_ms(m.ts), m.value, m.value_text, m.value_json, m.quality::VARCHAR{columns}
FROM (
    SELECT ts, seq, value, value_text, value_json, quality FROM samples
    WHERE series_id = $sid AND ts >= $start AND ts < $end
) m{joins}
ORDER BY m.ts, m.seq LIMIT $limit
"""
# several values in one millisecond: the context at that instant is the last arrived of them
_CONTEXT_SEARCH = timedelta(days=1)
_BEGINNING = datetime(1, 1, 1, tzinfo=UTC)
_CONTEXT_SERIES_SQL = """(
    SELECT ts, v.value, v.value_text, v.value_json FROM (
        SELECT ts, arg_max(struct_pack(value, value_text, value_json), seq) AS v FROM samples
        WHERE series_id = $cid{index} AND ts >= $cfrom{index} AND ts < $end GROUP BY ts
    )
)"""
_CONTEXT_MES_SQL = """(
    SELECT ts, NULL::DOUBLE AS value, NULL::VARCHAR AS value_text, body::VARCHAR AS value_json FROM mes_events
    WHERE topic = $c{index} AND ts < $end
)"""
_COUNT_SQL = "SELECT '{table}', count(*), epoch_ms(min({column})), epoch_ms(max({column})) FROM {table}"

# The state active at $start is the last sample before it (found by a hash aggregate, no sort);
# lead() gives each sample's end, lag() marks where a new run of a value starts.
_STATES_SQL = """
WITH ids AS (SELECT unnest($ids::UINTEGER[]) AS series_id),
inside AS (
    SELECT series_id, ts, seq, value, value_text FROM samples
    WHERE series_id IN (SELECT series_id FROM ids) AND ts >= $start AND ts < $stop
),
before AS (
    SELECT series_id, max(ts) AS ts, arg_max(struct_pack(v := value, t := value_text), (ts, seq)) AS s FROM samples
    WHERE series_id IN (SELECT series_id FROM ids) AND ts < $start GROUP BY series_id
),
points AS (SELECT * FROM inside UNION ALL SELECT series_id, ts, 0, s.v, s.t FROM before),
marked AS (
    SELECT series_id, ts, value, value_text, lead(ts) OVER w AS next_ts,
        (lag(ts) OVER w IS NULL OR lag(value) OVER w IS DISTINCT FROM value
            OR lag(value_text) OVER w IS DISTINCT FROM value_text) AS entered
    FROM points WINDOW w AS (PARTITION BY series_id ORDER BY ts, seq)
)
SELECT series_id, value, value_text,
    sum(epoch_ms(least(coalesce(next_ts, $stop), $stop)) - epoch_ms(greatest(ts, $start))) AS millis,
    count(*) FILTER (WHERE entered) AS entries
FROM marked GROUP BY series_id, value, value_text
"""
