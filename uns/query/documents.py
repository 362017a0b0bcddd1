"""The ``last`` and ``raw`` history documents, written one way for every store that answers them.

The historian's DuckDB file (``uns.historian.queries.History``) and a PostgreSQL sink
(``uns.sinks.postgres_history.PostgresHistory``) both answer them, so ``/api/history/last`` and
``uns query raw --sink NAME`` give the same keys in the same order from either.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from uns.errors import BadArgument
from uns.query.args import MAX_LIMIT, Document, QueryArgs
from uns.query.values import LastValue, Point

__all__ = ["SampleReader", "last_document", "raw_document", "raw_header", "raw_window"]


class SampleReader(Protocol):
    """A store's samples as the query kit's values: the newest per series, and one series over a window."""

    def last(self, match: str | Sequence[str]) -> list[LastValue]:
        """The newest value of every series matching any of the topics or filters, ordered by topic."""
        ...

    def raw(self, topic: str, start: datetime, end: datetime, *, limit: int = ..., tz: ZoneInfo = ...) -> list[Point]:
        """The samples of one series in ``[start, end)``, oldest first, at most ``limit`` of them."""
        ...


def last_document(reader: SampleReader, args: QueryArgs) -> Document:
    """``last``: the newest value of each series ``match`` names (one or more topics or filters)."""
    matches = args.many("match")
    if not matches:
        raise BadArgument("match", "required: one or more topics or filters, like acme/dallas/+/+/+/data/#")
    rows = [
        {
            "topic": item.topic,
            "ts": args.at(item.ts),
            "value": item.value,
            "quality": item.quality,
            "historical": item.historical,
            "datatype": item.datatype,
            "unit": item.unit,
        }
        for item in reader.last(matches)
    ]
    return {"match": matches, "tz": args.tz.key, "rows": rows}


def raw_window(args: QueryArgs) -> tuple[str, datetime, datetime, int]:
    """``topic``, ``start`` (default ``-1h``), ``end`` (default ``now``) and ``limit`` of a raw or as-of request."""
    return args.one("topic"), args.time("start", "-1h"), args.time("end", "now"), args.limit(10_000)


def raw_header(args: QueryArgs, topic: str, start: datetime, end: datetime, limit: int, found: int) -> Document:
    """A raw document without its rows; ``found`` rows were read for ``limit`` (one more says it is truncated)."""
    return {
        "topic": topic,
        "start": args.at(start),
        "end": args.at(end),
        "tz": args.tz.key,
        "limit": limit,
        "truncated": found > limit,
    }


def raw_document(reader: SampleReader, args: QueryArgs) -> Document:
    """``raw``: one series' samples over a window, at most ``limit`` of them."""
    topic, start, end, limit = raw_window(args)
    points = reader.raw(topic, start, end, limit=min(limit + 1, MAX_LIMIT), tz=args.tz)
    rows = [{"ts": p.ts, "value": p.value, "quality": p.quality, "historical": p.historical} for p in points[:limit]]
    return {**raw_header(args, topic, start, end, limit, len(points)), "rows": rows}
