"""The value envelope: the JSON body retained on every UNS ``data`` and ``kpi`` topic."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, SerializerFunctionWrapHandler, model_serializer

__all__ = ["ENVELOPE_FIELDS", "JSON_DATATYPE", "Envelope", "Quality", "infer_datatype"]

ENVELOPE_FIELDS = ("value", "timestamp_ms", "quality", "datatype", "unit", "unbound", "historical", "source")
"""The envelope's keys in the order the hub writes them; ``unit``, ``unbound``, ``historical`` and
``source`` are left out when they hold their default (None, False, False, None)."""

_OMIT_WHEN_DEFAULT = {"unit": None, "unbound": False, "historical": False, "source": None}
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
