"""The history endpoints without a transport: query parameters in, JSON documents out.

The HTTP API (``/api/history/<endpoint>``) and ``uns query`` both call ``run_endpoint``, so a
parameter means the same everywhere and a bad one is named the same way. Every document has
``"rows"``: a list of flat objects (one column per key), ready for a table, CSV or a chart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from uns.historian.queries import History
from uns.historian.query_buckets import AGGREGATES
from uns.historian.query_json import NotColumnar, asof_rows, bucket_rows, raw_rows
from uns.query.args import MAX_LIMIT, Document, Params, QueryArgs, document_bytes
from uns.query.documents import last_document, raw_document, raw_header, raw_window
from uns.query.timespec import format_interval, parse_interval
from uns.query.values import Value

__all__ = ["ENDPOINTS", "answer_bytes", "run_endpoint"]

log = logging.getLogger(__name__)


def _zone(tz: ZoneInfo) -> str:
    return tz.key


def _series(history: History, args: QueryArgs) -> Document:
    match = args.one("match", "#")
    rows = [
        {
            "topic": info.topic,
            "path": info.path,
            "class": info.class_,
            "metric": info.metric,
            "datatype": info.datatype,
            "unit": info.unit,
            "first_seen": args.at(info.first_seen),
        }
        for info in history.series(match)
    ]
    return {"match": match, "tz": _zone(args.tz), "rows": rows}


def _raw_columnar(history: History, args: QueryArgs) -> tuple[Document, bytes]:
    topic, start, end, limit = raw_window(args)
    found = history.raw_table(topic, start, end, limit=min(limit + 1, MAX_LIMIT))
    return raw_header(args, topic, start, end, limit, found.table.num_rows), raw_rows(found, args.tz, limit)


def _bucketed(args: QueryArgs) -> tuple[str, datetime, datetime, timedelta, list[str], str]:
    """``topic``, ``start``, ``end``, ``bucket``, ``agg`` and ``fill`` of an aggregate request."""
    topic = args.one("topic")
    start, end = args.time("start", "-1h"), args.time("end", "now")
    bucket = parse_interval(args.one("bucket", "1m"), field="bucket")
    names = [name.strip() for name in args.one("agg", ",".join(AGGREGATES)).split(",") if name.strip()]
    return topic, start, end, bucket, names, args.one("fill", "null")


def _aggregate_header(
    args: QueryArgs, topic: str, start: datetime, end: datetime, bucket: timedelta, names: list[str], fill: str
) -> Document:
    return {
        "topic": topic,
        "start": args.at(start),
        "end": args.at(end),
        "tz": _zone(args.tz),
        "bucket": format_interval(bucket),
        "agg": names,
        "fill": fill,
    }


def _aggregate(history: History, args: QueryArgs) -> Document:
    topic, start, end, bucket, names, fill = _bucketed(args)
    buckets = history.aggregate(topic, start, end, bucket=bucket, aggregates=names, fill=fill, tz=args.tz)
    rows = [{"start": b.start, "end": b.end, **b.values, "filled": b.filled} for b in buckets]
    return {**_aggregate_header(args, topic, start, end, bucket, names, fill), "rows": rows}


def _aggregate_columnar(history: History, args: QueryArgs) -> tuple[Document, bytes]:
    topic, start, end, bucket, names, fill = _bucketed(args)
    found = history.aggregate_table(topic, start, end, bucket=bucket, aggregates=names, fill=fill, tz=args.tz)
    return _aggregate_header(args, topic, start, end, bucket, names, fill), bucket_rows(found, args.tz)


def _states(history: History, args: QueryArgs) -> Document:
    match = args.one("match")
    start, end = args.time("start", "-1h"), args.time("end", "now")
    rows = [
        {"topic": item.topic, "value": item.value, "seconds": item.seconds, "entries": item.entries}
        for item in history.state_durations(match, start, end)
    ]
    return {"match": match, "start": args.at(start), "end": args.at(end), "tz": _zone(args.tz), "rows": rows}


def _asof_header(
    args: QueryArgs, topic: str, context: list[str], start: datetime, end: datetime, limit: int, found: int
) -> Document:
    return {
        "topic": topic,
        "context": context,
        "start": args.at(start),
        "end": args.at(end),
        "tz": _zone(args.tz),
        "limit": limit,
        "truncated": found > limit,
    }


def _asof(history: History, args: QueryArgs) -> Document:
    topic, start, end, limit = raw_window(args)
    context = args.many("context")
    found = history.asof(topic, start, end, context=context, limit=min(limit + 1, MAX_LIMIT), tz=args.tz)
    rows: list[dict[str, Value | datetime]] = [
        {"ts": row.ts, "value": row.value, "quality": row.quality, **row.context} for row in found[:limit]
    ]
    return {**_asof_header(args, topic, context, start, end, limit, len(found)), "rows": rows}


def _asof_columnar(history: History, args: QueryArgs) -> tuple[Document, bytes]:
    topic, start, end, limit = raw_window(args)
    context = args.many("context")
    found = history.asof_table(topic, start, end, context=context, limit=min(limit + 1, MAX_LIMIT))
    header = _asof_header(args, topic, context, start, end, limit, found.table.num_rows)
    return header, asof_rows(found, args.tz, limit)


def _dead_letters(history: History, args: QueryArgs) -> Document:
    letters = history.dead_letters(args.limit(100), tz=args.tz)
    rows = [
        {"received": item.received, "topic": item.topic, "field": item.field, "reason": item.reason,
         "payload": _preview(item.payload)}
        for item in letters
    ]  # fmt: skip
    return {"tz": _zone(args.tz), "rows": rows}


def _counts(history: History, args: QueryArgs) -> Document:
    rows = [
        {"table": table, "rows": count.rows, "oldest": count.oldest, "newest": count.newest}
        for table, count in history.counts(tz=args.tz).items()
    ]
    return {"tz": _zone(args.tz), "rows": rows}


def _preview(payload: bytes | None) -> str | None:
    """A dead letter's payload as text; undecodable bytes shown as U+FFFD."""
    return None if payload is None else payload.decode("utf-8", errors="replace")


_Handler = Callable[[History, QueryArgs], Document]
_ENDPOINTS: dict[str, tuple[_Handler, tuple[str, ...]]] = {
    "series": (_series, ("match", "tz")),
    "last": (last_document, ("match", "tz")),
    "raw": (raw_document, ("topic", "start", "end", "limit", "tz")),
    "aggregate": (_aggregate, ("topic", "start", "end", "bucket", "agg", "fill", "tz")),
    "states": (_states, ("match", "start", "end", "tz")),
    "asof": (_asof, ("topic", "start", "end", "context", "limit", "tz")),
    "dead-letters": (_dead_letters, ("limit", "tz")),
    "counts": (_counts, ("tz",)),
}

_Columnar = Callable[[History, QueryArgs], tuple[Document, bytes]]
_COLUMNAR: dict[str, _Columnar] = {"raw": _raw_columnar, "aggregate": _aggregate_columnar, "asof": _asof_columnar}

ENDPOINTS = tuple(_ENDPOINTS)
"""Endpoint names: ``/api/history/<name>``."""


def run_endpoint(history: History, endpoint: str, params: Params) -> Document:
    """Answer one endpoint; synchronous (DuckDB), so run it with ``asyncio.to_thread``.

    ``start`` defaults to ``-1h`` and ``end`` to ``now``; ``tz`` (default UTC) reads times without
    an offset and writes every time in the document.

    Raises:
        BadArgument: naming the parameter (HTTP 400, CLI exit 2).
        UnknownSeries: for a topic that names no series (HTTP 404).
        KeyError: for an endpoint that does not exist.
    """
    handler, allowed = _ENDPOINTS[endpoint]
    return handler(history, QueryArgs(endpoint, params, allowed, history.now()))


def answer_bytes(history: History, endpoint: str, params: Params) -> bytes:
    """The bytes of ``document_bytes(run_endpoint(...))``; ``raw``, ``aggregate`` and ``asof`` written column-wise.

    Their rows go from Arrow columns straight to JSON (``query_json``), several times faster than
    one Python object per row; rows the columnar writer does not cover exactly are answered row by row.

    Raises:
        BadArgument, UnknownSeries, KeyError: as ``run_endpoint``.
    """
    handler, allowed = _ENDPOINTS[endpoint]
    args = QueryArgs(endpoint, params, allowed, history.now())
    columnar = _COLUMNAR.get(endpoint)
    if columnar is not None:
        try:
            header, rows = columnar(history, args)
        except NotColumnar as exc:
            log.debug("history %s answered row by row: %s", endpoint, exc)
        else:
            written = document_bytes({**header, "rows": []})  # ends with "rows":[]}
            return b"".join((written[:-2], rows, written[-2:]))
    return document_bytes(handler(history, args))
