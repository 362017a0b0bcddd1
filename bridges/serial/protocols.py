"""Frames read as instrument answers: MT-SICS and Sartorius SBI scales, scanners, regular expressions (pure).

A frame that does not read raises ``ParseError`` with the column of the first byte that is wrong,
so the caller can name the stream offset. Each parser's metrics are fixed by its config.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Protocol

from bridges.json_paths import convert
from bridges.source import TagSpec
from model.bridges.serial import (
    MASS_UNITS,
    InstrumentProtocol,
    MtSicsProtocol,
    RegexProtocol,
    SartoriusProtocol,
    ScannerProtocol,
)
from uns.sparkplug import DataType, MetricValue

__all__ = ["ParseError", "Parser", "Reading", "make_parser", "mass"]

_MT_STATUS = {"S": "stable", "D": "dynamic", "I": "busy", "+": "overload", "-": "underload"}
_MT_ERRORS = {"ES": "syntax error", "ET": "transmission error", "EL": "logical error"}
_SBI_CODES = {"H": "overload", "HH": "overload", "L": "underload", "LL": "underload", "C": "busy"}
_SBI_VALUE = re.compile(r"([+-]?)\s*([0-9.\[\]]+)\s*([A-Za-z%/]*)")


class ParseError(Exception):
    """A frame that does not read: the column (0 = its first byte) of what is wrong, and why."""

    def __init__(self, column: int, reason: str) -> None:
        self.column = column
        self.reason = reason
        super().__init__(reason)


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """What one frame said."""

    values: Mapping[str, MetricValue]
    """Metric name -> value; ``None`` = that metric is bad (an overload has no weight)."""
    fields: Mapping[str, object]
    """Values for event templates: weight, unit, code, named groups."""
    answers: str = ""
    """The command a reply answers (MT-SICS ``S``, ``Z``, ``T``), for writes waiting on it; '' for data."""
    refusal: str = ""
    """The instrument said no (``Z I``, ``ES``): the reason, for the write waiting on it."""
    stable: bool | None = None
    """Scales: a settled weight."""


class Parser(Protocol):
    """Reads frames of one instrument kind."""

    def tags(self, device: str) -> list[TagSpec]:
        """The device's metrics."""
        ...

    def parse(self, data: bytes) -> Reading:
        """One frame; raises ``ParseError``."""
        ...


def _text(data: bytes, allowed: bytes = b"") -> str:
    if data.isascii():
        text = data.decode("ascii")
        if text.isprintable():  # the usual frame: one C-level check, no loop per byte
            return text
    for column, byte in enumerate(data):
        if not (32 <= byte < 127 or byte in b"\t" or byte in allowed):
            raise ParseError(column, f"byte 0x{byte:02x} is not printable ASCII")
    return data.decode("ascii")


def mass(value: float, unit: str, wanted: str, decimals: int) -> float:
    """``value`` in ``unit`` as ``wanted`` (both mass units, or equal); rounded so 12345 g reads 12.345 kg."""
    if unit == wanted:
        return value
    if unit not in MASS_UNITS or wanted not in MASS_UNITS:
        raise ValueError(f"unit {unit!r} is not {wanted!r} nor a mass unit convertible to it")
    ratio = MASS_UNITS[unit] / MASS_UNITS[wanted]
    exponent = math.log10(ratio)
    extra = max(0, -round(exponent)) if abs(exponent - round(exponent)) < 1e-9 else 6
    return round(value * ratio, decimals + extra)


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


class _Scale:
    """Weight, Stable, Status and Tare; the value conversion both scale protocols share."""

    def __init__(self, unit: str) -> None:
        self.unit = unit

    def tags(self, device: str) -> list[TagSpec]:
        return [
            TagSpec(device, "Weight", DataType.Double, unit=self.unit),
            TagSpec(device, "Stable", DataType.Boolean),
            TagSpec(device, "Status", DataType.String, description="stable, dynamic, busy, overload, underload"),
            TagSpec(device, "Tare", DataType.Double, unit=self.unit),
            TagSpec(device, "Command/Zero", DataType.Boolean, writable=True),
            TagSpec(device, "Command/Tare", DataType.Boolean, writable=True),
        ]

    def weight(self, sign: str, number: str, unit: str, column: int) -> float:
        try:
            value = float(number)
        except ValueError:
            raise ParseError(column, f"{number!r} is not a weight") from None
        try:
            return mass(-value if sign == "-" else value, unit, self.unit, _decimals(number))
        except ValueError as exc:
            raise ParseError(column + len(number), str(exc)) from None

    def reading(self, status: str, weight: float | None, answers: str = "S") -> Reading:
        stable = status == "stable"
        values: dict[str, MetricValue] = {"Stable": stable, "Status": status}
        if status in ("stable", "dynamic"):
            values["Weight"] = weight
        elif status in ("overload", "underload"):
            values["Weight"] = None
        fields = {} if weight is None else {"weight": weight, "unit": self.unit}
        return Reading(values, fields, answers=answers, stable=stable)


class _MtSics(_Scale):
    def __init__(self, config: MtSicsProtocol) -> None:
        super().__init__(config.unit)

    def parse(self, data: bytes) -> Reading:
        text = _text(data)
        parts = text.split()
        if not parts:
            raise ParseError(0, "an empty MT-SICS answer")
        command = parts[0]
        if command in _MT_ERRORS and len(parts) == 1:
            return Reading({}, {}, answers="*", refusal=f"{command}: {_MT_ERRORS[command]}")
        if len(parts) < 2:
            raise ParseError(0, f"{text!r} is not an MT-SICS answer (<command> <status> ...)")
        status = parts[1]
        column = text.index(status, len(command))
        if command in ("S", "SI"):
            if status not in _MT_STATUS:
                raise ParseError(column, f"weight status {status!r} is not S, D, I, + or -")
            if status in ("S", "D"):
                if len(parts) != 4:
                    raise ParseError(column + 1, "a weight answer is 'S S <value> <unit>'")
                return self.reading(_MT_STATUS[status], self._value(text, parts, column), answers="S")
            if len(parts) != 2:
                raise ParseError(column + 1, f"'S {status}' takes no value")
            return self.reading(_MT_STATUS[status], None)
        if command == "Z":
            if status == "A":
                return Reading({}, {}, answers="Z")
            if status in ("I", "+", "-"):
                return Reading({}, {}, answers="Z", refusal=f"Z {status}: not zeroed ({_MT_STATUS[status]})")
            raise ParseError(column, f"zero status {status!r} is not A, I, + or -")
        if command == "T":
            if status == "S" and len(parts) == 4:
                return Reading({"Tare": self._value(text, parts, column)}, {}, answers="T")
            if status in ("I", "+", "-"):
                return Reading({}, {}, answers="T", refusal=f"T {status}: not tared ({_MT_STATUS[status]})")
            raise ParseError(column, f"{text!r} is not a tare answer (T S <value> <unit>, T I, T +, T -)")
        if command == "TA" and status == "A" and len(parts) == 4:  # the tare weight asked (TA)
            return Reading({"Tare": self._value(text, parts, column)}, {}, answers="TA")
        return Reading({}, {}, answers=command)  # another command's answer (I4, @ ...): nothing to publish

    def _value(self, text: str, parts: list[str], status_column: int) -> float:
        number, unit = parts[2], parts[3]
        column = text.index(number, status_column + 1)
        sign = "-" if number.startswith("-") else ""
        return self.weight(sign, number.lstrip("+-"), unit, column)


class _Sartorius(_Scale):
    def __init__(self, config: SartoriusProtocol) -> None:
        super().__init__(config.unit)

    def parse(self, data: bytes) -> Reading:
        text = _text(data)
        column = 0
        if text[:1].isalpha() and len(text) > 6:  # the 22-byte format: a 6-byte ID (N, G#, T, Qnt ...) first
            column = 6
        body = text[column:]
        word = body.strip()
        if word in _SBI_CODES:
            return self.reading(_SBI_CODES[word], None)
        if word.startswith("Err"):
            return Reading({"Status": "error"}, {}, answers="S", refusal=f"Sartorius {word}")
        match = _SBI_VALUE.fullmatch(word)
        if match is None:
            wrong = next((i for i, c in enumerate(body) if not (c.isalnum() or c in " +-.[]")), body.index(word[:1]))
            raise ParseError(column + wrong, f"{word!r} is not a Sartorius SBI value")
        sign, number, unit = match.groups()
        number = number.replace("[", "").replace("]", "")  # brackets mark digits not verified (legal metrology)
        start = column + body.index(word) + match.start(2)
        if not unit:  # SBI prints the unit only once the scale has settled
            try:
                value = -float(number) if sign == "-" else float(number)
            except ValueError:
                raise ParseError(start, f"{number!r} is not a weight") from None
            return self.reading("dynamic", value)
        return self.reading("stable", self.weight(sign, number, unit, start))


class _Scanner:
    def __init__(self, config: ScannerProtocol) -> None:
        self._prefix = config.prefix
        self._suffix = config.suffix
        self._pattern = re.compile(config.pattern) if config.pattern else None

    def tags(self, device: str) -> list[TagSpec]:
        return [
            TagSpec(device, "Code", DataType.String, description="The last code read."),
            TagSpec(device, "Scans", DataType.Int64, description="Codes read since the bridge started."),
        ]

    def parse(self, data: bytes) -> Reading:
        text = _text(data, allowed=b"\x1d")  # GS separates GS1 fields
        if not text.startswith(self._prefix):
            raise ParseError(0, f"does not start with the prefix {self._prefix!r}")
        if not text.endswith(self._suffix):
            raise ParseError(max(0, len(text) - len(self._suffix)), f"does not end with the suffix {self._suffix!r}")
        code = text[len(self._prefix) : len(text) - len(self._suffix)]
        fields: dict[str, object] = {"code": code}
        if self._pattern is not None:
            match = self._pattern.fullmatch(code)
            if match is None:
                raise ParseError(len(self._prefix), f"code {code!r} does not match the pattern")
            fields.update({k: v for k, v in match.groupdict().items() if v is not None})
        return Reading({"Code": code}, fields)


class _Regex:
    def __init__(self, config: RegexProtocol) -> None:
        self._pattern = re.compile(config.pattern)
        self._metrics = config.metrics

    def tags(self, device: str) -> list[TagSpec]:
        return [TagSpec(device, m.name, DataType[m.type], unit=m.unit, deadband=m.deadband) for m in self._metrics]

    def parse(self, data: bytes) -> Reading:
        text = _text(data)
        match = self._pattern.fullmatch(text)
        if match is None:
            matched = self._pattern.match(text)  # a match of the start: the rest is what is wrong
            column = matched.end() if matched else 0
            raise ParseError(column, f"{text!r} does not match the pattern")
        values: dict[str, MetricValue] = {}
        for metric in self._metrics:
            found = match.group(metric.group)
            datatype = DataType[metric.type]
            if found is None:
                raise ParseError(0, f"group {metric.group} is empty")
            try:
                values[metric.name] = convert(_typed(found.strip(), datatype), datatype)
            except ValueError as exc:
                raise ParseError(match.start(metric.group), f"group {metric.group}: {exc}") from None
        return Reading(values, dict(match.groupdict()))


def _typed(text: str, datatype: DataType) -> object:
    if datatype is DataType.Boolean:
        lowered = text.lower()
        if lowered in ("1", "true", "on", "yes"):
            return True
        if lowered in ("0", "false", "off", "no"):
            return False
        return text
    if datatype in (DataType.String, DataType.Text):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def make_parser(config: InstrumentProtocol) -> Parser:
    """The parser of a device's protocol."""
    if isinstance(config, MtSicsProtocol):
        return _MtSics(config)
    if isinstance(config, SartoriusProtocol):
        return _Sartorius(config)
    if isinstance(config, ScannerProtocol):
        return _Scanner(config)
    return _Regex(config)
