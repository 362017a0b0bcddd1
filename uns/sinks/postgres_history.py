"""Reading the PostgreSQL sink's tables back: ``last`` and ``raw`` answers of the same types as the DuckDB history.

A small reader, not yet behind ``uns query`` or ``/api/history`` (see ``docs/sinks.md``): it answers
with ``LastValue`` and ``Point`` exactly as ``uns.historian.queries.History`` does, so wiring it in
is a matter of choosing the backend. Filters are matched on the series list with the MQTT rules of
``uns.mqtt.filters``, so ``+`` and ``#`` behave as they do everywhere else in the hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

from uns.errors import BadArgument, UnknownSeries
from uns.mqtt.filters import filter_error, topic_matches
from uns.query.args import check_limit
from uns.query.timespec import UTC_ZONE, checked_window
from uns.query.values import LastRow, LastValue, Point, StoredRow, is_filter, last_values, stored_points

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresHistory"]

# value_json as its text (jsonb::text), as DuckDB gives it: the query kit's rows (typed_value parses it)
_LAST_SQL = (
    "SELECT s.topic, (extract(epoch FROM l.ts) * 1000)::int8, l.value, l.value_text, l.value_json::text, l.quality,"
    " l.historical, s.datatype, s.unit FROM {schema}.latest l JOIN {schema}.series s USING (series_id)"
    " WHERE l.series_id = ANY(%s) ORDER BY s.topic"
)
_RAW_SQL = (
    "SELECT (extract(epoch FROM ts) * 1000)::int8, value, value_text, value_json::text, quality, historical"
    " FROM {schema}.samples WHERE series_id = %s AND ts >= %s AND ts < %s ORDER BY ts, received LIMIT %s"
)


class PostgresHistory:
    """History answers from a PostgreSQL sink's schema.

    Args:
        dsn: the database (``postgresql://...``), read with a short-lived connection per answer.
        schema: the sink's ``db_schema`` (a validated identifier).
    """

    def __init__(self, *, dsn: str, schema: str = "uns") -> None:
        self._dsn = dsn
        self._schema = schema
        self._last_sql = _LAST_SQL.format(schema=schema)
        self._raw_sql = _RAW_SQL.format(schema=schema)

    def _topics(self, conn: psycopg.Connection[tuple[object, ...]], filters: Sequence[str]) -> dict[str, int]:
        for text in filters:
            problem = filter_error(text)
            if problem:
                raise BadArgument("match", problem)
        rows = cast(
            list[tuple[str, int]],
            conn.execute(f"SELECT topic, series_id FROM {self._schema}.series").fetchall(),  # noqa: S608
        )
        return {topic: sid for topic, sid in rows if any(topic_matches(topic, f) for f in filters)}

    def last(self, match: str | Sequence[str]) -> list[LastValue]:
        """The newest value of every series matching any of the topics or filters, ordered by topic.

        Raises:
            UnknownSeries: for a plain topic (no wildcard) that names no series.
        """
        import psycopg  # on first use: the web serves this reader, and most hubs never call it

        filters = [match] if isinstance(match, str) else list(match)
        with psycopg.connect(self._dsn) as conn:
            ids = self._topics(conn, filters)
            rows = cast(
                list[LastRow],
                conn.execute(self._last_sql, [list(ids.values())]).fetchall(),
            )
        for text in filters:
            if not is_filter(text) and text not in ids:
                raise UnknownSeries(text, field="match")
        return last_values(rows)

    def raw(
        self, topic: str, start: datetime, end: datetime, *, limit: int = 10_000, tz: ZoneInfo = UTC_ZONE
    ) -> list[Point]:
        """The samples of one series in ``[start, end)``, oldest first, at most ``limit`` of them."""
        import psycopg

        start, end = checked_window(start, end)
        check_limit(limit)
        with psycopg.connect(self._dsn) as conn:
            found = conn.execute(
                f"SELECT series_id, datatype FROM {self._schema}.series WHERE topic = %s",  # noqa: S608
                [topic],
            ).fetchone()
            if found is None:
                raise UnknownSeries(topic)
            series_id, datatype = cast(tuple[int, str | None], found)
            rows = cast(
                list[StoredRow],
                conn.execute(self._raw_sql, [series_id, start, end, limit]).fetchall(),
            )
        return stored_points(rows, datatype, tz)
