"""The value envelope: the JSON body retained on every UNS ``data`` and ``kpi`` topic."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, SerializerFunctionWrapHandler, model_serializer

__all__ = ["ENVELOPE_FIELDS", "Envelope", "Quality"]

ENVELOPE_FIELDS = ("value", "timestamp_ms", "quality", "datatype", "unit", "unbound", "historical", "source")
"""The envelope's keys in the order the hub writes them; ``unit``, ``unbound``, ``historical`` and
``source`` are left out when they hold their default (None, False, False, None)."""

_OMIT_WHEN_DEFAULT = {"unit": None, "unbound": False, "historical": False, "source": None}


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
