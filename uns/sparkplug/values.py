"""Convert scalar and array values between Python and the Sparkplug wire fields.

Sparkplug carries every value in one of a few protobuf fields, chosen by its datatype:

====================================  ===================  ================================
datatype                              field                Python value
====================================  ===================  ================================
Int8, Int16, Int32, UInt8/16/32       ``int_value``        int (signed ones two's complement)
Int64, UInt64, DateTime               ``long_value``       int (Int64, DateTime two's complement)
Float / Double                        ``float_value`` /    float
                                      ``double_value``
Boolean                               ``boolean_value``    bool
String, Text, UUID                    ``string_value``     str
Bytes, File                           ``bytes_value``      bytes
the 13 array types                    ``bytes_value``      list (packed, see below)
====================================  ===================  ================================

The same field names exist in Metric, PropertyValue, DataSet.DataSetValue and
Template.Parameter, so one table serves them all. Decoding is lenient where no
information is lost: any integer type may arrive in ``int_value`` or ``long_value``, a
negative Int8/Int16/Int32 either sign-extended to 32 (or 64) bits (Java Tahu, Ignition)
or only to its own width (Python Tahu), and Float/Double in either float field.

Arrays (Sparkplug 3.0) are little-endian packed elements; BooleanArray is a uint32 LE
count then the bits packed MSB first; StringArray is NUL-terminated UTF-8 strings.
Conversions raise ``ValueError`` saying what does not fit.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence

from uns.sparkplug.datatypes import DataType

__all__ = [
    "SCALAR_DECODERS",
    "ArrayValue",
    "Converter",
    "ScalarValue",
    "decode_array",
    "decode_scalar",
    "encode_array",
    "encode_scalar",
    "float32_shortest",
    "is_scalar_type",
]

ScalarValue = int | float | bool | str
"""A value of one of the basic types Int8 … Text (and UUID)."""

ArrayValue = list[int] | list[float] | list[bool] | list[str]
"""A value of one of the array types."""

Converter = Callable[[str, int | float | bool | str | bytes], ScalarValue]
"""Turns ``(field name, raw wire value)`` into the Python value; raises ValueError when out of range."""

_FLOAT32 = struct.Struct("<f")
_DIGITS = tuple(f".{digits}g" for digits in range(10))  # format specs: "%.<digits>g"
_MASK32 = 0xFFFF_FFFF
_MASK64 = 0xFFFF_FFFF_FFFF_FFFF
_INT_FIELDS = frozenset({"int_value", "long_value"})
_FLOAT_FIELDS = frozenset({"float_value", "double_value"})


def _signed(bits: int) -> Converter:
    half, full = 1 << (bits - 1), 1 << bits

    def convert(field: str, raw: object) -> int:
        assert isinstance(raw, int)  # noqa: S101  (only called for int fields, as _FIELDS guarantees)
        if raw < half:
            return raw
        if raw < full:
            return raw - full
        carrier = 1 << (32 if field == "int_value" else 64)
        if raw >= carrier - half:
            return raw - carrier
        raise ValueError(f"{raw} in {field} is outside the Int{bits} range")

    return convert


def _unsigned(bits: int) -> Converter:
    full = 1 << bits

    def convert(field: str, raw: object) -> int:
        assert isinstance(raw, int)  # noqa: S101  (only called for int fields)
        if raw >= full:
            raise ValueError(f"{raw} in {field} is outside the UInt{bits} range")
        return raw

    return convert


def _text(field: str, raw: object) -> str:
    # upb hands back bytes for a proto2 string field that is not valid UTF-8.
    if not isinstance(raw, str):
        raise ValueError(f"{field} is not valid UTF-8")
    return raw


_FIELDS: dict[int, frozenset[str]] = {
    **dict.fromkeys(range(DataType.Int8, DataType.UInt64 + 1), _INT_FIELDS),
    DataType.Float: _FLOAT_FIELDS,
    DataType.Double: _FLOAT_FIELDS,
    DataType.Boolean: frozenset({"boolean_value"}),
    DataType.String: frozenset({"string_value"}),
    DataType.DateTime: _INT_FIELDS,
    DataType.Text: frozenset({"string_value"}),
    DataType.UUID: frozenset({"string_value"}),
}
_CONVERT: dict[int, Converter | None] = {
    DataType.Int8: _signed(8),
    DataType.Int16: _signed(16),
    DataType.Int32: _signed(32),
    DataType.Int64: _signed(64),
    DataType.UInt8: _unsigned(8),
    DataType.UInt16: _unsigned(16),
    DataType.UInt32: _unsigned(32),
    DataType.UInt64: _unsigned(64),
    DataType.Float: None,
    DataType.Double: None,
    DataType.Boolean: None,
    DataType.String: _text,
    DataType.DateTime: _signed(64),
    DataType.Text: _text,
    DataType.UUID: _text,
}
# (field, lowest, highest) to encode each integer type; negatives go out as two's complement.
_INT_ENCODING: dict[int, tuple[str, int, int]] = {
    DataType.Int8: ("int_value", -(1 << 7), (1 << 7) - 1),
    DataType.Int16: ("int_value", -(1 << 15), (1 << 15) - 1),
    DataType.Int32: ("int_value", -(1 << 31), (1 << 31) - 1),
    DataType.Int64: ("long_value", -(1 << 63), (1 << 63) - 1),
    DataType.UInt8: ("int_value", 0, (1 << 8) - 1),
    DataType.UInt16: ("int_value", 0, (1 << 16) - 1),
    DataType.UInt32: ("int_value", 0, (1 << 32) - 1),
    DataType.UInt64: ("long_value", 0, (1 << 64) - 1),
    DataType.DateTime: ("long_value", -(1 << 63), (1 << 63) - 1),
}
_ARRAY_FORMATS: dict[int, str] = {
    DataType.Int8Array: "b",
    DataType.Int16Array: "h",
    DataType.Int32Array: "i",
    DataType.Int64Array: "q",
    DataType.UInt8Array: "B",
    DataType.UInt16Array: "H",
    DataType.UInt32Array: "I",
    DataType.UInt64Array: "Q",
    DataType.FloatArray: "f",
    DataType.DoubleArray: "d",
    DataType.DateTimeArray: "q",
}


SCALAR_DECODERS: dict[int, tuple[frozenset[str], Converter | None]] = {d: (_FIELDS[d], _CONVERT[d]) for d in _FIELDS}
"""For each scalar datatype: the fields it may arrive in, and its converter (None: use the raw value).

The inlined form of :func:`decode_scalar`, for the per-metric hot path.
"""


def is_scalar_type(datatype: int) -> bool:
    """True if values of ``datatype`` travel in one of the scalar fields (Int8 … Text, UUID)."""
    return datatype in _FIELDS


def decode_scalar(datatype: DataType, field: str, raw: int | float | bool | str | bytes) -> ScalarValue:
    """The Python value of ``raw``, read from ``field``, for a scalar ``datatype``.

    Raises:
        ValueError: the field does not suit the datatype, or the value is out of its range.
    """
    fields = _FIELDS.get(datatype)
    if fields is None:
        raise ValueError(f"{datatype.name} is not a scalar datatype")
    if field not in fields:
        raise ValueError(f"{datatype.name} value carried in {field}, expected {' or '.join(sorted(fields))}")
    convert = _CONVERT[datatype]
    if convert is None:
        assert not isinstance(raw, bytes)  # noqa: S101  (bytes only come from string fields, converted above)
        return raw
    return convert(field, raw)


def encode_scalar(datatype: DataType, value: object) -> tuple[str, int | float | bool | str]:
    """The wire ``(field, raw value)`` for ``value`` of a scalar ``datatype``.

    Raises:
        ValueError: ``value`` has the wrong Python type or is out of the datatype's range.
    """
    limits = _INT_ENCODING.get(datatype)
    if limits is not None:
        field, low, high = limits
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{datatype.name} needs an int, got {type(value).__name__}")
        if not low <= value <= high:
            raise ValueError(f"{value} is outside the {datatype.name} range {low}..{high}")
        return field, value & (_MASK32 if field == "int_value" else _MASK64)
    if datatype in (DataType.Float, DataType.Double):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"{datatype.name} needs a float, got {type(value).__name__}")
        if datatype is DataType.Float and math.isfinite(value) and abs(value) > 3.4028234663852886e38:
            raise ValueError(f"{value} does not fit a 32-bit Float")
        return ("float_value" if datatype is DataType.Float else "double_value"), float(value)
    if datatype is DataType.Boolean:
        if not isinstance(value, bool):
            raise ValueError(f"Boolean needs a bool, got {type(value).__name__}")
        return "boolean_value", value
    if datatype in (DataType.String, DataType.Text, DataType.UUID):
        if not isinstance(value, str):
            raise ValueError(f"{datatype.name} needs a str, got {type(value).__name__}")
        return "string_value", value
    raise ValueError(f"{datatype.name} is not a scalar datatype")


def float32_shortest(value: float) -> float:
    """The float that prints as the shortest decimal reading back to the same float32 as ``value``.

    A Float metric arrives as a float32 widened to a double (``101.9`` -> ``101.9000015258789``);
    this gives back ``101.9``, the number the user wrote, for any JSON encoder to print. A value
    that is not exactly a float32 (a Float sent in ``double_value``, beyond the float32 range or
    with more precision) comes back unchanged, as do NaN, the infinities and zero.
    """
    if not math.isfinite(value) or value == 0.0:
        return value
    try:
        (target,) = _FLOAT32.unpack(_FLOAT32.pack(value))
    except OverflowError:
        return value
    if target != value:
        return value
    # the fewest significant digits that read back, by bisection over 1..9: if p digits read back,
    # so do p + 1 (the nearest p+1-digit decimal is at least as near); 9 always do
    low, high = 1, 9
    shortest = float(format(value, _DIGITS[9]))
    while low < high:
        digits = (low + high) // 2
        candidate = float(format(value, _DIGITS[digits]))
        if _reads_back(candidate, value):
            high, shortest = digits, candidate
        else:
            low = digits + 1
    return shortest


def _reads_back(candidate: float, value: float) -> bool:
    try:
        return bool(_FLOAT32.unpack(_FLOAT32.pack(candidate))[0] == value)
    except OverflowError:  # rounded up past the largest float32 (3.403e38): more digits needed
        return False


def decode_array(datatype: DataType, data: bytes) -> ArrayValue:
    """Unpack the ``bytes_value`` of an array ``datatype``.

    Raises:
        ValueError: the byte length does not fit the element size or the BooleanArray count,
            or a StringArray is not NUL-terminated UTF-8.
    """
    fmt = _ARRAY_FORMATS.get(datatype)
    if fmt is not None:
        size = struct.calcsize(fmt)
        count, rest = divmod(len(data), size)
        if rest:
            raise ValueError(f"{datatype.name} byte length {len(data)} is not a multiple of {size}")
        return list(struct.unpack(f"<{count}{fmt}", data))
    if datatype is DataType.BooleanArray:
        if len(data) < 4:
            raise ValueError(f"BooleanArray needs a 4-byte count, got {len(data)} bytes")
        (count,) = struct.unpack_from("<I", data)
        if len(data) - 4 != (count + 7) // 8:
            raise ValueError(
                f"BooleanArray of {count} values needs {(count + 7) // 8} bytes after the count, got {len(data) - 4}"
            )
        return [bool(data[4 + i // 8] & (0x80 >> (i % 8))) for i in range(count)]
    if datatype is DataType.StringArray:
        if not data:
            return []
        if data[-1] != 0:
            raise ValueError("StringArray does not end with a NUL byte")
        try:
            return data[:-1].decode("utf-8").split("\0")
        except UnicodeDecodeError as exc:
            raise ValueError(f"StringArray byte {exc.start} is not valid UTF-8") from None
    raise ValueError(f"{datatype.name} is not an array datatype")


def encode_array(datatype: DataType, values: Sequence[object]) -> bytes:
    """Pack ``values`` into the ``bytes_value`` of an array ``datatype``.

    Raises:
        ValueError: an element has the wrong type or is out of range, or a string holds NUL.
    """
    fmt = _ARRAY_FORMATS.get(datatype)
    if fmt is not None:
        floats = fmt in "fd"
        for index, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, (int | float) if floats else int):
                raise ValueError(f"{datatype.name} element {index} is a {type(value).__name__}")
        try:
            return struct.pack(f"<{len(values)}{fmt}", *values)
        except (struct.error, OverflowError) as exc:
            raise ValueError(f"{datatype.name} element out of range: {exc}") from None
    if datatype is DataType.BooleanArray:
        packed = bytearray((len(values) + 7) // 8)
        for index, value in enumerate(values):
            if not isinstance(value, bool):
                raise ValueError(f"BooleanArray element {index} is a {type(value).__name__}")
            if value:
                packed[index // 8] |= 0x80 >> (index % 8)
        return struct.pack("<I", len(values)) + bytes(packed)
    if datatype is DataType.StringArray:
        out = bytearray()
        for index, value in enumerate(values):
            if not isinstance(value, str) or "\0" in value:
                raise ValueError(f"StringArray element {index} must be a str without NUL")
            out += value.encode("utf-8") + b"\0"
        return bytes(out)
    raise ValueError(f"{datatype.name} is not an array datatype")
