"""Where the editor's test and replay get their messages: the web cache's current ones, the historian's past ones.

Samples come back as value envelopes (``value``, ``timestamp_ms``, ``quality``), MES events as their
stored bodies, all in time order, so the engines see what they saw live. Both are bounded: a filter
walks at most ``MAX_TOPICS`` topics, a replay reads at most ``MAX_MESSAGES`` messages.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime

import orjson

from uns.clock import epoch_ms
from uns.errors import UnknownSeries
from uns.historian.event_log import MesEventLog
from uns.historian.queries import History
from uns.historian.query_types import SeriesInfo
from uns.historian.rows import stored_envelope
from uns.mqtt.filters import topic_matches
from uns.query.values import Point, is_filter
from uns.web.cache import TopicCache

__all__ = ["MAX_MESSAGES", "MAX_TOPICS", "current_messages", "past_messages"]

MAX_TOPICS = 1000
"""Topics one filter may bring into a test or replay."""
MAX_MESSAGES = 200_000
"""Messages one replay reads from the historian (the oldest first; a longer stretch is cut and says so)."""


def current_messages(cache: TopicCache, filters: Sequence[str]) -> list[tuple[str, bytes]]:
    """Each cached topic matching one of ``filters``, with its last payload (at most ``MAX_TOPICS``)."""
    found: dict[str, bytes] = {}
    for topic_filter in filters:
        if not is_filter(topic_filter):
            payload = cache.payload(topic_filter)
            if payload is not None:
                found[topic_filter] = payload
            continue
        stack = [""]
        while stack and len(found) < MAX_TOPICS:
            prefix = stack.pop()
            for node in cache.children(prefix):
                if node.is_topic and topic_matches(node.path, topic_filter):
                    payload = cache.payload(node.path)
                    if payload is not None:
                        found[node.path] = payload
                if node.children and _may_lead(node.path, topic_filter):
                    stack.append(node.path)
    return list(found.items())[:MAX_TOPICS]


def _may_lead(path: str, topic_filter: str) -> bool:
    """Whether topics under ``path`` can match the filter (its first levels agree)."""
    wanted = topic_filter.split("/")
    for index, level in enumerate(path.split("/")):
        if index >= len(wanted):
            return False
        if wanted[index] == "#":
            return True
        if wanted[index] not in ("+", level):
            return False
    return True


def _message(point: Point, series: SeriesInfo) -> tuple[int, str, bytes]:
    """A stored sample as (its time ms, its topic, the value envelope it came in as: ``stored_envelope``)."""
    ms = epoch_ms(point.ts)
    body = stored_envelope(
        point.value,
        ms,
        point.quality,
        series.datatype,
        unit=series.unit,
        unbound=series.unbound,
        historical=point.historical,
    )
    return ms, series.topic, orjson.dumps(body)


def past_messages(
    history: History, events: MesEventLog, filters: Sequence[str], start: datetime, end: datetime
) -> tuple[list[tuple[int, str, bytes]], bool]:
    """Samples and MES events on ``filters`` in ``[start, end)``, oldest first; and whether the stretch was cut.

    Synchronous (DuckDB): run it in a thread.
    """
    streams: list[list[tuple[int, str, bytes]]] = []
    cut = False
    series: dict[str, SeriesInfo] = {}
    for topic_filter in filters:
        for info in history.series(topic_filter):
            series.setdefault(info.topic, info)
    cut = len(series) > MAX_TOPICS
    for topic, info in list(series.items())[:MAX_TOPICS]:
        try:
            points = history.raw(topic, start, end, limit=MAX_MESSAGES)
        except UnknownSeries:
            continue
        cut = cut or len(points) >= MAX_MESSAGES
        streams.append([_message(point, info) for point in points])
    logged = events.read(filters, start, end, limit=MAX_MESSAGES)
    cut = cut or len(logged) >= MAX_MESSAGES
    streams.append(logged)
    merged = list(heapq.merge(*streams, key=lambda message: message[0]))
    cut = cut or len(merged) > MAX_MESSAGES
    return merged[:MAX_MESSAGES], cut
