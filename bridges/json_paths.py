"""JSON paths (``$.a.b[0].c``) and JSON values as Sparkplug datatypes: what the JSON-reading bridges share.

The MQTT-JSON bridge and the HTTP source map documents with the same paths and the same conversions,
so a path or a type behaves the same whichever way the JSON arrived.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Self

import orjson

from uns.sparkplug import DataType, MetricValue

__all__ = ["MISSING", "JsonPath", "convert"]

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_INTEGER_RANGES = {
    DataType.Int8: (-(2**7), 2**7 - 1), DataType.Int16: (-(2**15), 2**15 - 1),
    DataType.Int32: (-(2**31), 2**31 - 1), DataType.Int64: (-(2**63), 2**63 - 1),
    DataType.UInt8: (0, 2**8 - 1), DataType.UInt16: (0, 2**16 - 1),
    DataType.UInt32: (0, 2**32 - 1), DataType.UInt64: (0, 2**64 - 1),
    DataType.DateTime: (0, 2**63 - 1),
}  # fmt: skip
MISSING = object()
"""What ``JsonPath.find`` returns when the document has no value at the path."""


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A dotted JSON path, ``$.a.b[0].c``, parsed once."""

    steps: tuple[str | int, ...]

    @classmethod
    def from_str(cls, path: str) -> Self:
        """Parse; raises ``ValueError`` naming the offset where the path stops making sense."""
        if not path.startswith("$"):
            raise ValueError(f"JSON path {path!r} must start with $")
        steps: list[str | int] = []
        position = 1
        while position < len(path):
            match = _STEP.match(path, position)
            if match is None:
                raise ValueError(f"JSON path {path!r}: cannot read from offset {position}")
            steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
            position = match.end()
        return cls(tuple(steps))

    def find(self, document: object) -> object:
        """The value at this path, or ``MISSING``."""
        current = document
        for step in self.steps:
            in_list = isinstance(step, int) and isinstance(current, list) and -len(current) <= step < len(current)
            in_object = isinstance(step, str) and isinstance(current, dict) and step in current
            if not (in_list or in_object):
                return MISSING
            current = current[step]  # type: ignore[index]
        return current


def convert(value: object, datatype: DataType) -> MetricValue:
    """A JSON value as the metric's datatype; raises ``ValueError`` saying why it does not fit."""
    if datatype is DataType.Boolean:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{value!r} is not a boolean")
    if datatype in (DataType.String, DataType.Text):
        if isinstance(value, str):
            return value
        return orjson.dumps(value).decode()  # objects and numbers keep their JSON text
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    if datatype in (DataType.Float, DataType.Double):
        return float(value)
    if isinstance(value, float):
        if not value.is_integer() or math.isinf(value):
            raise ValueError(f"{value!r} is not an integer")
        value = int(value)
    low, high = _INTEGER_RANGES[datatype]
    if not low <= value <= high:
        raise ValueError(f"{value} is outside {datatype.name} ({low}..{high})")
    return value
