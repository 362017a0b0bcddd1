"""Pure core of ingest: one UNS message into a sample row, an MES event row, a rejection, or nothing.

No I/O and no clock: the caller passes ``now_ms``. What is checked, and the ``field`` a rejection
names (it lands in ``dead_letters``):

- ``topic``        has a ``data``/``kpi``/``mes`` class word but is not a valid UNS topic
- ``payload``      not a JSON object (the byte offset of the JSON error is in the reason)
- envelopes: the hub's one reader (``model.envelope.read_fields``) names ``value``, ``datatype``,
  ``quality`` or ``timestamp_ms``; the historian adds the limit ``max_future_ms``. An envelope an
  in-process publisher already read (``Message.decoded``) is taken as read, under the same limit
  (``model.envelope.read_decoded``): the same row, or the same rejection, as its JSON gives
- ``timestamp_ms`` of an MES event: later than now + ``max_future_ms``

Other topics (``cmd``, the hub's own ``<enterprise>/hub/...`` status) are not history: ``None``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import cast

import orjson

from model.envelope import (
    EnvelopeDict,
    EnvelopeError,
    JsonValue,
    Quality,
    ReadingFields,
    build_envelope,
    read_decoded,
    read_fields,
    read_object,
)
from model.topic import ClassWord, TopicError, UnsTopic
from uns.query.values import Value, typed_value

__all__ = ["EventRow", "Rejected", "RowParser", "SampleRow", "envelope_of", "stored_envelope"]

_EXACT_FLOAT_INT = 2**53
_MAX_PAYLOAD_KEPT = 4096
_HISTORY_WORDS = frozenset({ClassWord.data, ClassWord.kpi, ClassWord.mes})
_TOPIC_CACHE_LIMIT = 200_000


@dataclasses.dataclass(slots=True)
class SampleRow:
    """One value of a ``data`` or ``kpi`` series, split into typed columns (see ``schema.py``).

    Read-only by convention, not frozen: a frozen dataclass sets each of these 15 fields through
    ``object.__setattr__``, ~2 us per row against ~0.2 (one per stored sample, on the event loop).
    """

    topic: str
    path: str
    class_word: str
    metric: str
    ts_ms: int
    value: float | None
    value_text: str | None
    value_json: str | None
    quality: str
    historical: bool
    source: str | None
    datatype: str | None
    """None for a null value sent without a datatype: the series keeps the one it has."""
    unit: str | None
    unbound: bool
    transient: bool = False
    """Not to be historized (``"transient": true``): the historian skips it and counts it; a forwarding sink
    sends it on (docs/historian.md, docs/sinks.md)."""


def envelope_of(row: SampleRow) -> Mapping[str, object]:
    """The sample as the envelope it came in: what a dead letter keeps and a sink's template reads as ``body``.

    Its value of any type (text, JSON, exact integers), timestamp, quality, datatype, unit and flags
    (``stored_envelope``).
    """
    value = typed_value(row.datatype, row.value, row.value_text, row.value_json)
    return stored_envelope(
        value, row.ts_ms, row.quality, row.datatype,
        unit=row.unit, unbound=row.unbound, historical=row.historical, source=row.source, transient=row.transient,
    )  # fmt: skip


def stored_envelope(
    value: Value,
    ts_ms: int,
    quality: str,
    datatype: str | None,
    *,
    unit: str | None = None,
    unbound: bool = False,
    historical: bool = False,
    source: str | None = None,
    transient: bool = False,
) -> EnvelopeDict:
    """A stored sample's value (``typed_value``'s) and fields as the envelope it came in, by the one encoder.

    A null sent without a datatype has none (its series may have none either), so the envelope leaves
    ``datatype`` and the optional keys out, as the publisher did. ``quality`` is a stored one: one of ``Quality``.
    """
    json_value = cast(JsonValue, value)  # read back from the stored number, text or JSON: JSON already
    if datatype is None:
        return {"value": json_value, "timestamp_ms": ts_ms, "quality": quality}
    return build_envelope(
        value=json_value, timestamp_ms=ts_ms, quality=Quality(quality), datatype=datatype, unit=unit,
        unbound=unbound, historical=historical, source=source, transient=transient,
    )  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class EventRow:
    """One MES event as received on ``<path>/mes/<event>``; typed by the MES adapter, kept raw here."""

    event_key: int
    topic: str
    path: str
    event: str
    ts_ms: int
    body: str


@dataclasses.dataclass(frozen=True, slots=True)
class Rejected:
    """A message that cannot be history, and why: it goes to the dead-letter table."""

    topic: str
    field: str
    reason: str
    payload: bytes


Parsed = SampleRow | EventRow | Rejected | None


@dataclasses.dataclass(frozen=True, slots=True)
class _TopicInfo:
    path: str
    class_value: str
    """The class word's text, as the row stores it (read once per topic, not per message)."""
    is_mes: bool
    name: str


def _columns(value: JsonValue) -> tuple[float | None, str | None, str | None]:
    """The (value, value_text, value_json) columns of an envelope value the reader has checked."""
    if isinstance(value, float):
        return value, None, None
    if value is None:
        return None, None, None
    if isinstance(value, bool):
        return float(value), None, None
    if isinstance(value, int):
        return float(value), str(value) if abs(value) > _EXACT_FLOAT_INT else None, None
    if isinstance(value, str):
        return None, value, None
    return None, None, orjson.dumps(value).decode()


class RowParser:
    """Turns UNS messages into rows; keeps a cache of parsed topics (the hot path sees few distinct ones).

    Args:
        max_future_ms: how far past ``now_ms`` a timestamp may lie before it is rejected.
        event_time: how to read an MES event body's time; default its ``timestamp_ms``, else receive time.
    """

    def __init__(
        self, *, max_future_ms: int, event_time: Callable[[Mapping[str, object]], int | None] | None = None
    ) -> None:
        self._max_future_ms = max_future_ms
        self._topics: dict[str, _TopicInfo | TopicError | None] = {}
        self._event_time = event_time or _event_timestamp

    def parse(self, topic: str, payload: bytes, *, now_ms: int, decoded: ReadingFields | None = None) -> Parsed:
        """The row for one message, a ``Rejected`` naming what is wrong, or None when it is not history.

        ``decoded``: the envelope as its in-process publisher read it (``Message.decoded``), used
        instead of parsing ``payload`` again.
        """
        info = self._topic(topic)
        if info is None:
            return None
        if isinstance(info, TopicError):
            return Rejected(topic, "topic", info.reason, payload[:_MAX_PAYLOAD_KEPT])
        try:
            if decoded is not None and not info.is_mes:
                return self._row(topic, info, read_decoded(decoded, now_ms=now_ms, max_future_ms=self._max_future_ms))
            try:
                body = orjson.loads(payload)
            except orjson.JSONDecodeError:
                body = None
            if body.__class__ is not dict:
                body = read_object(payload)  # raises the EnvelopeError naming the payload
            if info.is_mes:
                return self._event(topic, info, payload, body, now_ms)
            return self._sample(topic, info, payload, body, now_ms)
        except EnvelopeError as problem:
            return Rejected(topic, problem.field, problem.reason, payload[:_MAX_PAYLOAD_KEPT])

    def _topic(self, topic: str) -> _TopicInfo | TopicError | None:
        cached = self._topics.get(topic, _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        try:
            parsed = UnsTopic.from_str(topic)
            info: _TopicInfo | TopicError | None = (
                _TopicInfo(
                    parsed.equipment_path,
                    parsed.class_word.value,
                    parsed.class_word is ClassWord.mes,
                    parsed.metric_name,
                )
                if parsed.class_word in _HISTORY_WORDS and parsed.path[1:2] != ("hub",)
                else None  # <enterprise>/hub/... is the hub's own status tree, not plant history
            )
        except TopicError as exc:
            # only a topic that looks like history is a rejection; the hub's own status topics are not
            info = exc if any(level in _HISTORY_WORDS for level in topic.split("/")[1:]) else None
        if len(self._topics) >= _TOPIC_CACHE_LIMIT:
            self._topics.clear()
        self._topics[topic] = info
        return info

    def _sample(
        self, topic: str, info: _TopicInfo, payload: bytes, body: dict[str, JsonValue], now_ms: int
    ) -> SampleRow:
        return self._row(topic, info, read_fields(body, payload, now_ms=now_ms, max_future_ms=self._max_future_ms))

    @staticmethod
    def _row(topic: str, info: _TopicInfo, fields: ReadingFields) -> SampleRow:
        # unpacked at once and passed by position: keywords cost ~1 us per row here
        value, ts, quality, datatype, unit, unbound, historical, source, transient = fields
        number: float | None
        text: str | None
        json_text: str | None
        if value.__class__ is float:  # the usual sample
            number, text, json_text = value, None, None
        else:
            number, text, json_text = _columns(value)
        return SampleRow(
            topic,
            info.path,
            info.class_value,
            info.name,
            ts,
            number,
            text,
            json_text,
            quality,
            historical,
            source,
            datatype,
            unit,
            unbound,
            transient,
        )

    def _event(self, topic: str, info: _TopicInfo, payload: bytes, body: dict[str, JsonValue], now_ms: int) -> EventRow:
        ts = self._event_time(body)
        if ts is None:
            ts = now_ms
        elif ts > now_ms + self._max_future_ms:
            raise EnvelopeError("timestamp_ms", f"{(ts - now_ms) / 1000:.0f} s in the future: check the clock")
        digest = hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=8).digest()
        return EventRow(
            event_key=int.from_bytes(digest, "big"),
            topic=topic,
            path=info.path,
            event=info.name,
            ts_ms=ts,
            body=payload.decode("utf-8", errors="replace"),
        )


_MISSING = object()


def _event_timestamp(body: Mapping[str, object]) -> int | None:
    ts = body.get("timestamp_ms")
    if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
        return None
    return ts
