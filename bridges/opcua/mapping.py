"""Pure OPC UA ↔ Sparkplug mapping: variant types to datatypes, values both ways, status codes to quality."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Final

from asyncua import ua
from asyncua.ua.status_codes import StatusCodes

from model.envelope import Quality
from uns import clock
from uns.sparkplug import DataType, MetricValue
from uns.sparkplug.values import float32_shortest

__all__ = [
    "REVOKED_CODES",
    "Converter",
    "converter_for",
    "datatype_for_variant",
    "epoch_ms",
    "quality_of",
    "status_name",
    "to_variant",
    "variant_for_datatype",
    "variant_for_datatype_id",
]

Converter = Callable[[object], MetricValue]
"""Turns a value read from the server into the Python value of a Sparkplug datatype."""

_DATATYPE_OF: Final[Mapping[ua.VariantType, DataType]] = {
    ua.VariantType.Boolean: DataType.Boolean,
    ua.VariantType.SByte: DataType.Int8,
    ua.VariantType.Byte: DataType.UInt8,
    ua.VariantType.Int16: DataType.Int16,
    ua.VariantType.UInt16: DataType.UInt16,
    ua.VariantType.Int32: DataType.Int32,
    ua.VariantType.UInt32: DataType.UInt32,
    ua.VariantType.Int64: DataType.Int64,
    ua.VariantType.UInt64: DataType.UInt64,
    ua.VariantType.Float: DataType.Float,
    ua.VariantType.Double: DataType.Double,
    ua.VariantType.String: DataType.String,
    ua.VariantType.DateTime: DataType.DateTime,
    ua.VariantType.LocalizedText: DataType.String,
    ua.VariantType.Guid: DataType.UUID,
    ua.VariantType.ByteString: DataType.Bytes,
}

_VARIANT_OF: Final[Mapping[DataType, ua.VariantType]] = {
    DataType.Boolean: ua.VariantType.Boolean,
    DataType.Int8: ua.VariantType.SByte,
    DataType.UInt8: ua.VariantType.Byte,
    DataType.Int16: ua.VariantType.Int16,
    DataType.UInt16: ua.VariantType.UInt16,
    DataType.Int32: ua.VariantType.Int32,
    DataType.UInt32: ua.VariantType.UInt32,
    DataType.Int64: ua.VariantType.Int64,
    DataType.UInt64: ua.VariantType.UInt64,
    DataType.Float: ua.VariantType.Float,
    DataType.Double: ua.VariantType.Double,
    DataType.String: ua.VariantType.String,
    DataType.Text: ua.VariantType.String,
    DataType.DateTime: ua.VariantType.DateTime,
    DataType.UUID: ua.VariantType.Guid,
    DataType.Bytes: ua.VariantType.ByteString,
}

# Standard DataType node ids (namespace 0) that are not built-in variant types themselves.
_DERIVED_DATATYPE_IDS: Final[Mapping[int, ua.VariantType]] = {
    290: ua.VariantType.Double,  # Duration
    294: ua.VariantType.DateTime,  # UtcTime
    29: ua.VariantType.Int32,  # Enumeration
    11737: ua.VariantType.String,  # NormalizedString
    12877: ua.VariantType.String,  # DecimalString
}

_INT_RANGES: Final[Mapping[ua.VariantType, tuple[int, int]]] = {
    ua.VariantType.SByte: (-(2**7), 2**7 - 1),
    ua.VariantType.Byte: (0, 2**8 - 1),
    ua.VariantType.Int16: (-(2**15), 2**15 - 1),
    ua.VariantType.UInt16: (0, 2**16 - 1),
    ua.VariantType.Int32: (-(2**31), 2**31 - 1),
    ua.VariantType.UInt32: (0, 2**32 - 1),
    ua.VariantType.Int64: (-(2**63), 2**63 - 1),
    ua.VariantType.UInt64: (0, 2**64 - 1),
}


REVOKED_CODES: Final = frozenset({StatusCodes.BadNodeIdUnknown, StatusCodes.BadNodeIdInvalid})
"""Status codes that mean the server no longer has the node."""


def datatype_for_variant(variant: ua.VariantType) -> DataType | None:
    """The Sparkplug datatype a variant type maps to; None when it has no scalar counterpart."""
    return _DATATYPE_OF.get(variant)


def variant_for_datatype(datatype: DataType) -> ua.VariantType:
    """The variant type to write for a Sparkplug datatype (used when the server does not say).

    Raises:
        ValueError: the datatype has no OPC UA scalar counterpart.
    """
    try:
        return _VARIANT_OF[datatype]
    except KeyError:
        raise ValueError(f"datatype {datatype.name} has no OPC UA variant type") from None


def variant_for_datatype_id(namespace: int, identifier: object) -> ua.VariantType | None:
    """The variant type of a node's ``DataType`` attribute; None when it is not a known standard type."""
    if namespace != 0 or not isinstance(identifier, int):
        return None
    if 1 <= identifier <= 21:
        # Built-in DataType node ids share their numbers with the variant types.
        return ua.VariantType(identifier)
    return _DERIVED_DATATYPE_IDS.get(identifier)


def quality_of(code: int) -> Quality:
    """Quality of an OPC UA status code, from its severity bits (Part 4, 7.34.1)."""
    severity = (code >> 30) & 0b11
    if severity == 0:
        return Quality.good
    if severity == 1:
        return Quality.uncertain
    return Quality.bad


def status_name(code: int) -> str:
    """Symbolic name of a status code (``BadNodeIdUnknown``), or its hex value when unknown."""
    try:
        name = ua.StatusCode(ua.UInt32(code)).name
    except (KeyError, ValueError):
        name = ""
    # asyncua falls back to the bare severity (``Bad``) for codes it does not know: show those in hex.
    if getattr(StatusCodes, name, None) != code & 0xFFFF0000:
        return f"0x{code:08X}"
    return name


def epoch_ms(moment: dt.datetime) -> int:
    """Milliseconds since the Unix epoch; naive datetimes are UTC (asyncua's convention)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return clock.epoch_ms(moment)


def _to_bool(value: object) -> MetricValue:
    if isinstance(value, bool | int):
        return bool(value)
    raise ValueError(f"expected a boolean, got {type(value).__name__}")


def _to_int(value: object) -> MetricValue:
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"expected an integer, got {type(value).__name__} {value!r}")


def _to_float(value: object) -> MetricValue:
    if isinstance(value, bool | int | float):
        return float(value)
    raise ValueError(f"expected a number, got {type(value).__name__}")


def _to_str(value: object) -> MetricValue:
    if isinstance(value, ua.LocalizedText):
        return value.Text or ""
    if isinstance(value, bytes):
        raise ValueError("expected text, got bytes")
    return str(value)


def _to_datetime(value: object) -> MetricValue:
    if isinstance(value, dt.datetime):
        return epoch_ms(value)
    raise ValueError(f"expected a DateTime, got {type(value).__name__}")


def _to_bytes(value: object) -> MetricValue:
    if isinstance(value, bytes):
        return value
    raise ValueError(f"expected bytes, got {type(value).__name__}")


_CONVERTERS: Final[Mapping[DataType, Converter]] = {
    DataType.Boolean: _to_bool,
    **{t: _to_int for t in (DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64)},
    **{t: _to_int for t in (DataType.UInt8, DataType.UInt16, DataType.UInt32, DataType.UInt64)},
    DataType.Float: _to_float,
    DataType.Double: _to_float,
    DataType.String: _to_str,
    DataType.Text: _to_str,
    DataType.UUID: _to_str,
    DataType.DateTime: _to_datetime,
    DataType.Bytes: _to_bytes,
}


def _float32_to_double(value: object) -> MetricValue:
    # a Float node read into a Double metric: the float32's digits, not its double expansion
    number = _to_float(value)
    return float32_shortest(number) if isinstance(number, float) else number


def converter_for(datatype: DataType, variant: ua.VariantType | None = None) -> Converter:
    """The function that turns server values of ``variant`` (the node's type) into values of ``datatype``.

    A ``Float`` node published as a ``Double`` metric gives the number the float32 holds as written
    (``101.9``), not its double expansion (``101.9000015258789``), which would look like a real digit.

    Raises:
        ValueError: the datatype is not one a bridge tag may have.
    """
    if datatype is DataType.Double and variant is ua.VariantType.Float:
        return _float32_to_double
    try:
        return _CONVERTERS[datatype]
    except KeyError:
        raise ValueError(f"datatype {datatype.name} is not supported by the OPC UA bridge") from None


def to_variant(value: MetricValue, variant: ua.VariantType) -> ua.Variant:
    """A value from a DCMD as a variant of the node's own type.

    Raises:
        ValueError: the value does not fit the variant type (wrong kind or out of range).
    """
    if variant is ua.VariantType.Boolean:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return ua.Variant(bool(value), variant)
    elif variant in _INT_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            low, high = _INT_RANGES[variant]
            if not low <= value <= high:
                raise ValueError(f"{value} is out of range for {variant.name} ({low}..{high})")
            return ua.Variant(value, variant)
    elif variant in (ua.VariantType.Float, ua.VariantType.Double):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return ua.Variant(float(value), variant)
    elif variant is ua.VariantType.String:
        if isinstance(value, str):
            return ua.Variant(value, variant)
    elif variant is ua.VariantType.LocalizedText:
        if isinstance(value, str):
            return ua.Variant(ua.LocalizedText(value), variant)
    elif variant is ua.VariantType.DateTime:
        if isinstance(value, int) and not isinstance(value, bool):
            return ua.Variant(clock.at_epoch_ms(value), variant)
    elif variant is ua.VariantType.ByteString:
        if isinstance(value, bytes):
            return ua.Variant(value, variant)
    else:
        raise ValueError(f"writing {variant.name} nodes is not supported")
    raise ValueError(f"cannot write {type(value).__name__} {value!r} to a {variant.name} node")
