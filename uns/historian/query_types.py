"""What the historian's own queries return: series, buckets, state durations, as-of rows, dead letters, counts.

The values inside them are the query kit's (``uns.query.values``: ``Value``, ``Point``, ``LastValue``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from uns.query.values import Value

__all__ = ["AsOfRow", "Bucket", "DeadLetter", "SeriesInfo", "StateDuration", "TableCount"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SeriesInfo:
    """One stored series: its UNS topic split into equipment path, class word and metric."""

    topic: str
    path: str
    class_: str
    metric: str
    datatype: str | None
    unit: str | None
    unbound: bool
    """No binding names its Sparkplug device (the envelope's ``unbound``)."""
    first_seen: datetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Bucket:
    """One time bucket ``[start, end)`` with the aggregates asked for, by name.

    ``filled`` is true when the bucket had no numeric sample and its values come from the fill mode.
    """

    start: datetime
    end: datetime
    values: Mapping[str, Value]
    filled: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateDuration:
    """How long one series held one value inside the asked range, and how often it entered it."""

    topic: str
    value: Value
    seconds: float
    entries: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AsOfRow:
    """One sample with, per context topic, the value (or MES event body) active at its instant."""

    ts: datetime
    value: Value
    quality: str
    context: Mapping[str, Value]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """A message the historian could not store, and why."""

    received: datetime
    topic: str
    field: str
    reason: str
    payload: bytes | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TableCount:
    """Rows in one table and the time span they cover (None when empty)."""

    rows: int
    oldest: datetime | None
    newest: datetime | None
