"""What any history query answers with and how it reads topics: typed values, samples, MQTT filters as SQL.

Shared by the historian, the MES views and a sink's history (``uns.sinks.postgres_history``), so a value
and a filter mean the same in each.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo

import orjson

from uns.errors import BadArgument
from uns.mqtt.filters import filter_error
from uns.query.timespec import UTC_ZONE, instant

__all__ = [
    "BOOLEAN_TYPES",
    "INTEGER_TYPES",
    "STATE_TYPES",
    "TEXT_TYPES",
    "LastRow",
    "LastValue",
    "Point",
    "StoredRow",
    "Value",
    "is_filter",
    "last_values",
    "stored_points",
    "topic_condition",
    "typed_value",
]

Value = bool | int | float | str | list[object] | dict[str, object] | None
"""A sample's value as Python: typed by the series' Sparkplug datatype."""

BOOLEAN_TYPES = frozenset({"Boolean"})
INTEGER_TYPES = frozenset({"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "DateTime"})
TEXT_TYPES = frozenset({"String", "Text", "UUID"})
STATE_TYPES = BOOLEAN_TYPES | (INTEGER_TYPES - {"DateTime"}) | TEXT_TYPES
"""Datatypes whose values name a state (a machine state code, a mode, a flag)."""

_PUNCTUATION = frozenset(string.punctuation)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LastValue:
    """The newest sample of one series."""

    topic: str
    ts: datetime
    value: Value
    quality: str
    historical: bool
    datatype: str | None
    unit: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    """One raw sample."""

    ts: datetime
    value: Value
    quality: str
    historical: bool


def typed_value(datatype: str | None, value: float | None, text: str | None, json_text: str | None) -> Value:
    """A stored sample's value as Python, by its series' Sparkplug datatype.

    Booleans come back as bool, integers as int (exact from ``value_text`` beyond 2^53), other
    numbers as float, strings as str, arrays and objects parsed from JSON.
    """
    if json_text is not None:
        parsed: Value = orjson.loads(json_text)
        return parsed
    if datatype in BOOLEAN_TYPES:
        return None if value is None else bool(value)
    if datatype in INTEGER_TYPES:
        if text is not None:
            try:
                return int(text)
            except ValueError:
                return text  # not digits after all: show what was stored rather than fail the query
        return None if value is None else int(value)
    if value is not None:
        return float(value)
    return text


StoredRow = tuple[int, float | None, str | None, str | None, str, bool]
"""A stored sample as every history reader selects it: epoch ms, value, value_text, value_json (its JSON text),
quality, historical."""
LastRow = tuple[str, int, float | None, str | None, str | None, str, bool, str | None, str | None]
"""A series' newest sample as every history reader selects it: topic, epoch ms, value, value_text, value_json,
quality, historical, datatype, unit."""


def stored_points(rows: Iterable[StoredRow], datatype: str | None, tz: tzinfo) -> list[Point]:
    """Selected samples of one series as ``Point``s: values typed by its ``datatype``, times in ``tz``."""
    return [
        Point(ts=instant(ts, tz), value=typed_value(datatype, value, text, json_text), quality=q, historical=h)
        for ts, value, text, json_text, q, h in rows
    ]


def last_values(rows: Iterable[LastRow]) -> list[LastValue]:
    """Selected newest samples as ``LastValue``s: values typed by their series' datatype, times in UTC."""
    return [
        LastValue(
            topic=topic, ts=instant(ts, UTC_ZONE), value=typed_value(datatype, value, text, json_text),
            quality=quality, historical=historical, datatype=datatype, unit=unit,
        )
        for topic, ts, value, text, json_text, quality, historical, datatype, unit in rows
    ]  # fmt: skip


def is_filter(topic_or_filter: str) -> bool:
    """True when the text holds an MQTT wildcard (``+`` or ``#``)."""
    return "+" in topic_or_filter or "#" in topic_or_filter


def _check_filter(text: str, field: str) -> list[str]:
    """The levels of a valid MQTT filter (``uns.mqtt.filters``' rules), else its problem named with ``field``."""
    if "\x00" in text:  # no topic holds one (MQTT-4.7.3-2): say so rather than match nothing
        raise BadArgument(field, f"topic filter {text!r} holds a NUL character")
    problem = filter_error(text)
    if problem is not None:
        raise BadArgument(field, problem)
    return text.split("/")


def _escape(level: str) -> str:
    """A literal topic level as an RE2 pattern: backslash before every ASCII punctuation character."""
    return "".join("\\" + char if char in _PUNCTUATION else char for char in level)


def _regex(levels: Sequence[str]) -> str:
    parts = ["[^/]*" if level == "+" else _escape(level) for level in levels if level != "#"]
    if levels[-1] != "#":
        return "/".join(parts)
    if not parts:
        return ".*"
    return "/".join(parts) + "(?:/.*)?"  # MQTT: a/# matches a itself too


def topic_condition(column: str, filters: Sequence[str], *, field: str = "match") -> tuple[str, list[object]]:
    """A SQL condition (with ``?`` parameters) true when ``column`` matches any of the MQTT filters.

    Plain topics become an ``IN`` list, wildcard filters one anchored regular expression; user text
    only ever travels as a parameter. ``column`` must be a trusted SQL expression.

    Raises:
        BadArgument: naming ``field`` when a filter is malformed (``a#``, ``#/a``, ``a+b``).
    """
    exact: list[str] = []
    patterns: list[str] = []
    for text in filters:
        levels = _check_filter(text, field)
        if is_filter(text):
            patterns.append(f"(?:{_regex(levels)})")
        else:
            exact.append(text)
    if not exact and not patterns:
        raise BadArgument(field, "give at least one topic or filter, like acme/dallas/+/+/+/data/#")
    terms: list[str] = []
    params: list[object] = []
    if exact:
        terms.append(f"{column} IN (SELECT unnest(?::VARCHAR[]))")
        params.append(exact)
    if patterns:
        terms.append(f"regexp_full_match({column}, ?)")
        params.append("|".join(patterns))
    return "(" + " OR ".join(terms) + ")", params
