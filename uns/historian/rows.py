"""Pure core of ingest: one UNS message into a sample row, an MES event row, a rejection, or nothing.

No I/O and no clock: the caller passes ``now_ms``. What is checked, and the ``field`` a rejection
names (it lands in ``dead_letters``):

- ``topic``        has a ``data``/``kpi``/``mes`` class word but is not a valid UNS topic
- ``payload``      not a JSON object (the byte offset of the JSON error is in the reason)
- ``timestamp_ms`` not a non-negative integer, or later than now + ``max_future_ms``
- ``datatype``     not a non-empty string (envelopes only)
- ``quality``      not one of good, uncertain, bad, stale
- ``value``        missing, or not of the declared datatype (a string in an Int32, 300 in a UInt8), or
                   without a datatype an integer beyond 64 bits

A plain JSON publisher (Node-RED: ``{"value": 21.5}``) may leave out ``datatype``, inferred from the
JSON type (``model.envelope.infer_datatype``), and ``timestamp_ms``, which is then the receive time.

Other topics (``cmd``, the hub's own ``<enterprise>/hub/...`` status) are not history: ``None``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable

import orjson

from model.envelope import infer_datatype
from model.topic import ClassWord, TopicError, UnsTopic
from uns.historian.schema import QUALITIES

__all__ = ["EventRow", "Rejected", "RowParser", "SampleRow"]

_EXACT_FLOAT_INT = 2**53
_WITHIN_64_BITS = (-(2**63), 2**64)  # orjson reads an integer not strictly between these as a float
_MAX_PAYLOAD_KEPT = 4096
_QUALITIES = frozenset(QUALITIES)
_INT_RANGES = {
    "Int8": (-(2**7), 2**7 - 1),
    "Int16": (-(2**15), 2**15 - 1),
    "Int32": (-(2**31), 2**31 - 1),
    "Int64": (-(2**63), 2**63 - 1),
    "UInt8": (0, 2**8 - 1),
    "UInt16": (0, 2**16 - 1),
    "UInt32": (0, 2**32 - 1),
    "UInt64": (0, 2**64 - 1),
    "DateTime": (0, 2**63 - 1),
}
_TEXT_TYPES = frozenset({"String", "Text", "UUID", "Bytes", "File"})
_FLOAT_TYPES = frozenset({"Float", "Double"})
_HISTORY_WORDS = frozenset({ClassWord.data, ClassWord.kpi, ClassWord.mes})
_TOPIC_CACHE_LIMIT = 200_000


@dataclasses.dataclass(frozen=True, slots=True)
class SampleRow:
    """One value of a ``data`` or ``kpi`` series, split into typed columns (see ``schema.py``)."""

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
    class_word: ClassWord
    name: str


class _Reject(Exception):  # internal control flow, never escapes this module
    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason


def _check_value(value: object, datatype: str) -> tuple[float | None, str | None, str | None]:
    """The (value, value_text, value_json) columns of an envelope value; raises ``_Reject`` on a misfit."""
    if value is None:
        return None, None, None
    if isinstance(value, bool):
        if datatype in _INT_RANGES or datatype in _FLOAT_TYPES or datatype in _TEXT_TYPES:
            raise _Reject("value", f"true/false, but the datatype is {datatype}")
        return float(value), None, None
    if isinstance(value, int):
        bounds = _INT_RANGES.get(datatype)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise _Reject("value", f"{value} is outside {datatype} ({bounds[0]}..{bounds[1]})")
        if datatype == "Boolean" or datatype in _TEXT_TYPES:
            raise _Reject("value", f"a number, but the datatype is {datatype}")
        exact = str(value) if abs(value) > _EXACT_FLOAT_INT else None
        return float(value), exact, None
    if isinstance(value, float):
        if datatype in _INT_RANGES:
            raise _Reject("value", f"{value!r} is not an integer ({datatype})")
        if datatype == "Boolean" or datatype in _TEXT_TYPES:
            raise _Reject("value", f"a number, but the datatype is {datatype}")
        return value, None, None
    if isinstance(value, str):
        if datatype in _INT_RANGES or datatype in _FLOAT_TYPES or datatype == "Boolean":
            raise _Reject("value", f"a string, but the datatype is {datatype}")
        return None, value, None
    if datatype in _INT_RANGES or datatype in _FLOAT_TYPES or datatype == "Boolean" or datatype in _TEXT_TYPES:
        raise _Reject("value", f"a JSON {type(value).__name__}, but the datatype is {datatype}")
    return None, None, orjson.dumps(value).decode()


def _datatype(body: dict[str, object], payload: bytes) -> str | None:
    """The envelope's datatype, or the one its value's JSON type implies when it has none."""
    datatype = body.get("datatype")
    if datatype is not None:
        if not isinstance(datatype, str) or not datatype:
            raise _Reject("datatype", f"must be a Sparkplug datatype name such as Float (got {datatype!r})")
        return datatype
    value = body["value"]
    if isinstance(value, float) and not _WITHIN_64_BITS[0] < value < _WITHIN_64_BITS[1]:
        # orjson rounds an integer beyond 64 bits to a float: the text tells integer from 1e20
        value = json.loads(payload).get("value", value)
    try:
        return infer_datatype(value)
    except ValueError as exc:
        raise _Reject("value", str(exc)) from None


def _timestamp(body: dict[str, object], now_ms: int, max_future_ms: int) -> int:
    ts = body.get("timestamp_ms")
    if ts is None:
        return now_ms  # a plain JSON publisher sends none: the value is as of its arrival
    if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
        raise _Reject("timestamp_ms", f"must be a non-negative integer of ms since 1970 (got {ts!r})")
    if ts > now_ms + max_future_ms:
        ahead = (ts - now_ms) / 1000
        raise _Reject(
            "timestamp_ms", f"{ahead:.0f} s in the future (limit {max_future_ms / 1000:.0f} s): check the clock"
        )
    return ts


def _json_error_offset(payload: bytes, error: orjson.JSONDecodeError) -> str:
    # orjson reports a character position; for the ASCII payloads we see it is the byte offset
    return f"not JSON at byte {error.pos}: {error.msg}"


class RowParser:
    """Turns UNS messages into rows; keeps a cache of parsed topics (the hot path sees few distinct ones).

    Args:
        max_future_ms: how far past ``now_ms`` a timestamp may lie before it is rejected.
        event_time: how to read an MES event body's time; default its ``timestamp_ms``, else receive time.
    """

    def __init__(
        self, *, max_future_ms: int, event_time: Callable[[dict[str, object]], int | None] | None = None
    ) -> None:
        self._max_future_ms = max_future_ms
        self._topics: dict[str, _TopicInfo | TopicError | None] = {}
        self._event_time = event_time or _event_timestamp

    def parse(self, topic: str, payload: bytes, *, now_ms: int) -> Parsed:
        """The row for one message, a ``Rejected`` naming what is wrong, or None when it is not history."""
        info = self._topic(topic)
        if info is None:
            return None
        if isinstance(info, TopicError):
            return Rejected(topic, "topic", info.reason, payload[:_MAX_PAYLOAD_KEPT])
        try:
            try:
                body = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                raise _Reject("payload", _json_error_offset(payload, exc)) from None
            if not isinstance(body, dict):
                raise _Reject("payload", f"a JSON {type(body).__name__}, not an object")
            if info.class_word is ClassWord.mes:
                return self._event(topic, info, payload, body, now_ms)
            return self._sample(topic, info, payload, body, now_ms)
        except _Reject as problem:
            return Rejected(topic, problem.field, problem.reason, payload[:_MAX_PAYLOAD_KEPT])

    def _topic(self, topic: str) -> _TopicInfo | TopicError | None:
        cached = self._topics.get(topic, _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        try:
            parsed = UnsTopic.from_str(topic)
            info: _TopicInfo | TopicError | None = (
                _TopicInfo(parsed.equipment_path, parsed.class_word, parsed.metric_name)
                if parsed.class_word in _HISTORY_WORDS and parsed.path[1:2] != ("hub",)
                else None  # <enterprise>/hub/... is the hub's own status tree, not plant history
            )
        except TopicError as exc:
            # only a topic that looks like history is a rejection; the hub's own status topics are not
            levels = topic.split("/")
            info = exc if any(word in levels[1:] for word in ("data", "kpi", "mes")) else None
        if len(self._topics) >= _TOPIC_CACHE_LIMIT:
            self._topics.clear()
        self._topics[topic] = info
        return info

    def _sample(self, topic: str, info: _TopicInfo, payload: bytes, body: dict[str, object], now_ms: int) -> SampleRow:
        if "value" not in body:
            raise _Reject("value", "missing (null is allowed)")
        datatype = _datatype(body, payload)
        quality = body.get("quality", "good")
        if quality not in _QUALITIES:
            raise _Reject("quality", f"must be one of {', '.join(QUALITIES)} (got {quality!r})")
        ts = _timestamp(body, now_ms, self._max_future_ms)
        value, text, json_text = _check_value(body["value"], datatype or "")
        unit = body.get("unit")
        source = body.get("source")
        return SampleRow(
            topic=topic,
            path=info.path,
            class_word=info.class_word.value,
            metric=info.name,
            ts_ms=ts,
            value=value,
            value_text=text,
            value_json=json_text,
            quality=str(quality),
            historical=body.get("historical") is True,
            source=source if isinstance(source, str) else None,
            datatype=datatype,
            unit=unit if isinstance(unit, str) else None,
            unbound=body.get("unbound") is True,
        )

    def _event(self, topic: str, info: _TopicInfo, payload: bytes, body: dict[str, object], now_ms: int) -> EventRow:
        ts = self._event_time(body)
        if ts is None:
            ts = now_ms
        elif ts > now_ms + self._max_future_ms:
            raise _Reject("timestamp_ms", f"{(ts - now_ms) / 1000:.0f} s in the future: check the clock")
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


def _event_timestamp(body: dict[str, object]) -> int | None:
    ts = body.get("timestamp_ms")
    if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
        return None
    return ts
