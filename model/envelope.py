"""The value envelope: the JSON body retained on every UNS ``data`` and ``kpi`` topic.

One encoder (``build_envelope``) and one reader (``read_envelope``) for the whole hub, plain
functions over orjson dicts: no pydantic per message. The ``Envelope`` model is the schema
(``uns schema``) of what the hub writes; the reader also takes what other publishers may send
(docs/namespace.md, "Value envelope").
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field, JsonValue, SerializerFunctionWrapHandler, model_serializer

__all__ = [
    "ENVELOPE_FIELDS",
    "JSON_DATATYPE",
    "USABLE_QUALITIES",
    "Envelope",
    "EnvelopeDict",
    "EnvelopeError",
    "JsonValue",
    "Quality",
    "Reading",
    "ReadingFields",
    "build_envelope",
    "check_value",
    "infer_datatype",
    "read_body",
    "read_decoded",
    "read_envelope",
    "read_fields",
    "read_object",
]

EnvelopeDict = dict[str, JsonValue]
"""An envelope as the hub builds it, before orjson writes it."""

ENVELOPE_FIELDS = (
    "value", "timestamp_ms", "quality", "datatype", "unit", "unbound", "historical", "source", "transient",
)  # fmt: skip
"""The envelope's keys in the order the hub writes them; ``unit``, ``unbound``, ``historical``,
``source`` and ``transient`` are left out when they hold their default (None, False, False, None, False)."""

_OMIT_WHEN_DEFAULT = {"unit": None, "unbound": False, "historical": False, "source": None, "transient": False}
_INT64 = range(-(2**63), 2**63)
_UINT64_TOP = range(2**63, 2**64)

JSON_DATATYPE = "Json"
"""The datatype inferred for an array or object sent without one: stored as JSON, as a DataSet is.
Not a Sparkplug datatype; the hub never writes it, only a reader infers it."""


def infer_datatype(value: object) -> str | None:
    """The datatype of an envelope ``value`` sent without one (a plain JSON publisher such as Node-RED).

    By the JSON type: ``true``/``false`` Boolean; an integer Int64, or UInt64 from 2^63 to 2^64 - 1
    (its exact digits are kept); a number with a fraction or an exponent Double; a string String;
    an array or object ``Json``; null None (no type to tell: the series keeps the one it has).

    Raises:
        ValueError: an integer beyond 64 bits, which no datatype holds exactly.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        if value in _INT64:
            return "Int64"
        if value in _UINT64_TOP:
            return "UInt64"
        raise ValueError(f"the integer {value} is beyond 64 bits: send it as a string, or as a Double with a fraction")
    if isinstance(value, float):
        return "Double"
    if isinstance(value, str):
        return "String"
    return JSON_DATATYPE


class Quality(StrEnum):
    """How far a value can be trusted."""

    good = "good"
    """Read fine from the source."""
    uncertain = "uncertain"
    """The source doubts it (e.g. an OPC quality code between 64 and 191)."""
    bad = "bad"
    """The source reported a failure or a null value."""
    stale = "stale"
    """The edge node or device that published it has died; this is its last known value."""


USABLE_QUALITIES = (Quality.good.value, Quality.uncertain.value)
"""The qualities whose values the hub computes with (the historian's rollups and compression, the MES
derivations); a bad or stale value is stored and shown, never counted."""


class Envelope(BaseModel):
    """One value on the UNS.

    JSON, keys in this order (see ``ENVELOPE_FIELDS``)::

        {"value": 72.4, "timestamp_ms": 1764000000123, "quality": "good", "datatype": "Float",
         "unit": "degC"}

    The host builds these as plain dicts in this order and encodes them with orjson on its hot path;
    this model is the contract they are tested against and what consumers validate with.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: JsonValue = Field(description="The value: number, bool, string, list, object or null.")
    timestamp_ms: Annotated[int, Field(strict=True, ge=0)] = Field(
        description="When the value was sampled, milliseconds since the Unix epoch (UTC)."
    )
    quality: Quality = Field(default=Quality.good, description="good, uncertain, bad or stale.")
    datatype: str = Field(min_length=1, description='The Sparkplug datatype name, e.g. "Float" or "Int32".')
    unit: str | None = Field(default=None, description="Engineering unit, e.g. degC; omitted when unknown.")
    unbound: bool = Field(
        default=False,
        description="True when the source device has no binding in the plant file; omitted when false.",
    )
    historical: bool = Field(
        default=False,
        description="True for a value sent late from an edge node's store-and-forward buffer; omitted when false.",
    )
    source: str | None = Field(
        default=None,
        description="Who produced the value, e.g. the Sparkplug <group>/<node>/<device>; omitted when unknown.",
    )
    transient: bool = Field(
        default=False,
        description="True for a live value that is not to be historized (Sparkplug is_transient): the historian "
        "and the time-series sinks skip it, every other consumer takes it as usual; omitted when false.",
    )

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = handler(self)
        for key, default in _OMIT_WHEN_DEFAULT.items():
            if key in data and data[key] == default:
                del data[key]
        return data

    @classmethod
    def json_schema(cls) -> dict[str, object]:
        """The JSON Schema of the envelope as consumers read it."""
        return cls.model_json_schema(mode="validation")


# -- the one encoder and the one reader (run time: no pydantic) ---------------------------------

_QUALITY_NAMES = {q.value: q.value for q in Quality}  # interned: one str per quality in every reading
_WITHIN_64_BITS = (-(2**63), 2**64)  # orjson reads an integer not strictly between these as a float
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
_NOT_BOOL = frozenset(_INT_RANGES) | _FLOAT_TYPES | _TEXT_TYPES
_NOT_NUMBER = _TEXT_TYPES | {"Boolean"}
_NOT_TEXT = frozenset(_INT_RANGES) | _FLOAT_TYPES | {"Boolean"}
_SCALAR_TYPES = _NOT_TEXT | _TEXT_TYPES
_NO_FLOAT = frozenset(_INT_RANGES) | _NOT_NUMBER
_GOOD = Quality.good.value


def build_envelope(
    *,
    value: JsonValue,
    timestamp_ms: int,
    quality: Quality,
    datatype: str,
    unit: str | None = None,
    unbound: bool = False,
    historical: bool = False,
    source: str | None = None,
    transient: bool = False,
) -> EnvelopeDict:
    """The envelope as a dict in ``ENVELOPE_FIELDS`` order, optional keys left out at their default."""
    # the member is its text (a StrEnum), but .value costs ~0.1 us per envelope: the interned text by lookup
    out: EnvelopeDict = {
        "value": value,
        "timestamp_ms": timestamp_ms,
        "quality": _QUALITY_NAMES[quality],
        "datatype": datatype,
    }
    if unit is not None:
        out["unit"] = unit
    if unbound:
        out["unbound"] = True
    if historical:
        out["historical"] = True
    if source:
        out["source"] = source
    if transient:
        out["transient"] = True
    return out


class EnvelopeError(ValueError):
    """A payload that is not a value envelope.

    ``field`` names what is wrong (``payload``, ``value``, ``datatype``, ``quality``,
    ``timestamp_ms``), ``reason`` says how.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Reading(NamedTuple):
    """One envelope as read: every key checked, defaults filled in (a tuple: cheap on the hot path)."""

    value: JsonValue
    """As sent (lists and objects too); already checked against ``datatype``."""
    timestamp_ms: int
    """As sent, else the receive time the caller passed."""
    quality: str
    """One of ``Quality``'s values (``good`` when not sent), interned."""
    datatype: str | None
    """As declared, else inferred from the JSON type; None only for a null value sent without one."""
    unit: str | None
    """None when absent or not a string."""
    unbound: bool
    historical: bool
    source: str | None
    """None when absent or not a string."""
    transient: bool = False
    """Not to be historized (``true`` sent); last, so the fields before it keep their places."""


_new_reading = tuple.__new__  # a Reading without NamedTuple's Python-level __new__ (~150 ns per message)

ReadingFields = tuple[JsonValue, int, str, str | None, str | None, bool, bool, str | None, bool]
"""A ``Reading``'s fields as a plain tuple, in its order (``read_fields``)."""


def read_object(payload: bytes) -> dict[str, JsonValue]:
    """The JSON object of a payload.

    Raises:
        EnvelopeError: ``payload``: not JSON (the byte offset is in the reason) or not an object.
    """
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # orjson reports a character position; for the ASCII payloads we see it is the byte offset
        raise EnvelopeError("payload", f"not JSON at byte {exc.pos}: {exc.msg}") from None
    if not isinstance(body, dict):
        raise EnvelopeError("payload", f"a JSON {type(body).__name__}, not an object")
    return body


def read_envelope(payload: bytes, *, now_ms: int, max_future_ms: int | None = None) -> Reading:
    """Read one value envelope with the hub's one set of rules (``read_body``'s)."""
    return read_body(read_object(payload), payload, now_ms=now_ms, max_future_ms=max_future_ms)


def read_body(body: dict[str, JsonValue], payload: bytes, *, now_ms: int, max_future_ms: int | None = None) -> Reading:
    """``read_fields`` as a ``Reading``."""
    return _new_reading(Reading, read_fields(body, payload, now_ms=now_ms, max_future_ms=max_future_ms))


def read_fields(
    body: dict[str, JsonValue], payload: bytes, *, now_ms: int, max_future_ms: int | None = None
) -> ReadingFields:
    """Check an envelope's JSON object (``payload`` is its text, read again only for an integer past 64 bits).

    The rules of every reader; a plain tuple in ``Reading``'s order, for the hot paths that unpack it.

    ``value`` is required (null is allowed); ``datatype`` a non-empty string, else inferred
    (``infer_datatype``); ``quality`` one of good, uncertain, bad, stale, else good;
    ``timestamp_ms`` a non-negative integer, else ``now_ms``, and with ``max_future_ms`` no later
    than ``now_ms + max_future_ms``; ``value`` must fit ``datatype`` (``check_value``). ``unbound``,
    ``historical`` and ``transient`` are set only by ``true``. Other keys are ignored.

    Raises:
        EnvelopeError: naming the first field that breaks a rule, in the order above.
    """
    if "value" not in body:
        raise EnvelopeError("value", "missing (null is allowed)")
    value = body["value"]
    known = 1  # keys of body read so far: the others are looked up only when there are more
    datatype = body.get("datatype")
    if datatype is None:
        datatype = _inferred(value, payload)
    elif datatype.__class__ is not str or not datatype:
        raise EnvelopeError("datatype", f"must be a Sparkplug datatype name such as Float (got {datatype!r})")
    else:
        known += 1
    raw_quality = body.get("quality")
    if raw_quality is None:
        quality = _GOOD
    else:
        known += 1
        found = _QUALITY_NAMES.get(raw_quality) if isinstance(raw_quality, str) else None
        if found is None:
            raise EnvelopeError("quality", f"must be one of {', '.join(_QUALITY_NAMES)} (got {raw_quality!r})")
        quality = found
    ts = body.get("timestamp_ms")
    if ts is None:
        ts = now_ms  # a plain JSON publisher sends none: the value is as of its arrival
    elif isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
        raise EnvelopeError("timestamp_ms", f"must be a non-negative integer of ms since 1970 (got {ts!r})")
    else:
        known += 1
    if max_future_ms is not None and ts > now_ms + max_future_ms:
        raise _future_error(ts, now_ms, max_future_ms)
    if value is not None and (value.__class__ is not float or datatype in _NO_FLOAT):
        check_value(value, datatype)  # type: ignore[arg-type]  # a datatype: only null has none
    unit = body.get("unit")
    if unit.__class__ is str:
        known += 1
    else:
        unit = None
    if len(body) == known:  # the usual envelope: no flags, no source
        return value, ts, quality, datatype, unit, False, False, None, False
    source = body.get("source")
    return (
        value,
        ts,
        quality,
        datatype,
        unit,
        body.get("unbound") is True,
        body.get("historical") is True,
        source if isinstance(source, str) else None,
        body.get("transient") is True,
    )


def read_decoded(fields: ReadingFields, *, now_ms: int, max_future_ms: int | None = None) -> ReadingFields:
    """A reading its publisher already made with ``read_fields`` (no future limit), under this reader's limit.

    In-process publishers hand it beside the JSON (``Message.decoded``); ``max_future_ms`` is the one
    rule that depends on the reader, and as every other rule passed it is the first to break, so the
    error is the one ``read_fields`` gives for the JSON.

    Raises:
        EnvelopeError: ``timestamp_ms`` later than ``now_ms + max_future_ms``.
    """
    if max_future_ms is not None and fields[1] > now_ms + max_future_ms:
        raise _future_error(fields[1], now_ms, max_future_ms)
    return fields


def _future_error(ts: int, now_ms: int, max_future_ms: int) -> EnvelopeError:
    ahead = (ts - now_ms) / 1000
    return EnvelopeError(
        "timestamp_ms", f"{ahead:.0f} s in the future (limit {max_future_ms / 1000:.0f} s): check the clock"
    )


def _inferred(value: JsonValue, payload: bytes) -> str | None:
    if isinstance(value, float) and not _WITHIN_64_BITS[0] < value < _WITHIN_64_BITS[1]:
        # orjson rounds an integer beyond 64 bits to a float: the text tells integer from 1e20
        try:
            value = json.loads(payload).get("value", value)
        except (RecursionError, ValueError):
            # orjson reads nesting 1024 deep, Python's json not ~1000 deep: a reader must refuse, never crash
            raise EnvelopeError("payload", "nested too deep to read a value beyond 64 bits exactly") from None
    try:
        return infer_datatype(value)
    except ValueError as exc:
        raise EnvelopeError("value", str(exc)) from None


def check_value(value: object, datatype: str) -> None:
    """Whether ``value`` fits ``datatype``: integers in its range, no string in a number, no list in a scalar.

    Types this does not know (arrays, DataSet, Template, ``Json``) take any JSON value.

    Raises:
        EnvelopeError: ``value``, saying how it misfits.
    """
    cls = value.__class__
    if value is None or (cls is float and datatype not in _INT_RANGES and datatype not in _NOT_NUMBER):
        return  # the hot path: a Double or Float
    if cls is bool:
        if datatype in _NOT_BOOL:
            raise EnvelopeError("value", f"true/false, but the datatype is {datatype}")
    elif cls is int:
        bounds = _INT_RANGES.get(datatype)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:  # type: ignore[operator]  # an int here
            raise EnvelopeError("value", f"{value} is outside {datatype} ({bounds[0]}..{bounds[1]})")
        if datatype in _NOT_NUMBER:
            raise EnvelopeError("value", f"a number, but the datatype is {datatype}")
    elif cls is float:
        if datatype in _INT_RANGES:
            raise EnvelopeError("value", f"{value!r} is not an integer ({datatype})")
        raise EnvelopeError("value", f"a number, but the datatype is {datatype}")
    elif cls is str:
        if datatype in _NOT_TEXT:
            raise EnvelopeError("value", f"a string, but the datatype is {datatype}")
    elif datatype in _SCALAR_TYPES:
        raise EnvelopeError("value", f"a JSON {cls.__name__}, but the datatype is {datatype}")
