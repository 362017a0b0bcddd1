"""Logix tag values, pure: Read/Write Tag requests for an address, reply decoding, and Sparkplug datatypes."""

from __future__ import annotations

import math
import struct

from bridges.ethernetip.cip import (
    ATOMIC_TYPES,
    CIP_STRING,
    DWORD,
    READ_TAG,
    READ_TAG_FRAGMENTED,
    SHORT_STRING,
    STRING_HANDLE,
    STRUCT_MARK,
    WRITE_TAG,
    element_segment,
    encode_request,
    symbolic_segment,
)
from model.bridges.ethernetip import TagAddress
from uns.sparkplug import DataType, MetricValue

__all__ = [
    "STRING_DATA",
    "STRING_SIZE",
    "ValueMismatch",
    "datatype_of",
    "decode_value",
    "encode_write",
    "read_request",
    "read_size",
    "tag_path",
    "type_name",
]

STRING_DATA = 82
"""Characters a Logix STRING holds."""
STRING_SIZE = 88
"""Bytes of a Logix STRING: DINT LEN, SINT DATA[82], 2 pad bytes."""

_SCALAR: dict[str, DataType] = {
    "BOOL": DataType.Boolean, "SINT": DataType.Int8, "INT": DataType.Int16, "DINT": DataType.Int32,
    "LINT": DataType.Int64, "USINT": DataType.UInt8, "UINT": DataType.UInt16, "UDINT": DataType.UInt32,
    "ULINT": DataType.UInt64, "REAL": DataType.Float, "LREAL": DataType.Double, "STRING": DataType.String,
}  # fmt: skip
_ARRAY: dict[str, DataType] = {
    "BOOL": DataType.BooleanArray, "SINT": DataType.Int8Array, "INT": DataType.Int16Array,
    "DINT": DataType.Int32Array, "LINT": DataType.Int64Array, "USINT": DataType.UInt8Array,
    "UINT": DataType.UInt16Array, "UDINT": DataType.UInt32Array, "ULINT": DataType.UInt64Array,
    "REAL": DataType.FloatArray, "LREAL": DataType.DoubleArray,
}  # fmt: skip
_BY_CODE = {t.code: t for t in ATOMIC_TYPES.values()}
_INTEGERS = ("SINT", "INT", "DINT", "LINT", "USINT", "UINT", "UDINT", "ULINT")


class ValueMismatch(ValueError):
    """A reply's type or length does not fit the tag's declared type; the message names both."""


def datatype_of(logix_type: str, address: TagAddress) -> DataType:
    """The Sparkplug datatype of a tag: the scalar's, or its array type for ``{N}`` element counts."""
    return _ARRAY[logix_type] if address.count is not None else _SCALAR[logix_type]


def type_name(code: int, handle: int | None = None) -> str:
    """``DINT (0xC4)``, ``STRING (struct 0x0FCE)``: a reply's type, for messages."""
    if code == STRUCT_MARK:
        return f"{'STRING' if handle == STRING_HANDLE else 'structure'} (handle 0x{handle or 0:04X})"
    known = _BY_CODE.get(code)
    names = {CIP_STRING: "CIP STRING", SHORT_STRING: "SHORT_STRING", DWORD: "DWORD (BOOL array)"}
    return f"{known.name if known else names.get(code, 'type')} (0x{code:02X})"


def tag_path(address: TagAddress) -> bytes:
    """The symbolic path of an address (without its bit): names and element segments."""
    path = b""
    for part in address.path_names:
        path += symbolic_segment(part.name)
        for index in part.indices:
            path += element_segment(index)
    return path


def read_request(address: TagAddress, *, offset: int | None = None) -> bytes:
    """Read Tag (or, with ``offset``, Read Tag Fragmented) for an address's elements."""
    elements = struct.pack("<H", address.count or 1)
    if offset is None:
        return encode_request(READ_TAG, tag_path(address), elements)
    return encode_request(READ_TAG_FRAGMENTED, tag_path(address), elements + struct.pack("<I", offset))


def read_size(logix_type: str, address: TagAddress) -> int:
    """Bytes of a Read Tag reply's data (type word, structure handle, values)."""
    if logix_type == "STRING":
        return 4 + STRING_SIZE
    if address.bit is not None:
        return 2 + 8  # the integer holding the bit: at most a LINT
    count = address.count or 1
    if logix_type == "BOOL" and address.count is not None:
        return 2 + 4 * math.ceil(count / 32)  # BOOL arrays travel as DWORDs
    return 2 + ATOMIC_TYPES[logix_type].size * count


def decode_value(logix_type: str, address: TagAddress, data: bytes) -> MetricValue:
    """A Read Tag reply's data as the metric's value; ``ValueMismatch`` when it is not the declared type."""
    if len(data) < 2:
        raise ValueMismatch(f"reply data of {len(data)} bytes carries no type")
    (code,) = struct.unpack_from("<H", data)
    if logix_type == "STRING":
        return _decode_string(code, data)
    got = _BY_CODE.get(code)
    if address.bit is not None:
        if got is None or got.name not in _INTEGERS:
            raise ValueMismatch(f"PLC answered {type_name(code)}; a bit address needs an integer")
        (word,) = struct.unpack_from("<" + got.fmt, data, 2)
        return bool((word >> address.bit) & 1)
    count = address.count or 1
    if logix_type == "BOOL" and address.count is not None and code == DWORD:
        words = struct.unpack_from(f"<{(len(data) - 2) // 4}I", data, 2)
        bits = [bool((word >> bit) & 1) for word in words for bit in range(32)]
        if len(bits) < count:
            raise ValueMismatch(f"PLC answered {len(bits)} bits for {count} elements")
        return bits[:count]
    expected = ATOMIC_TYPES[logix_type]
    if code != expected.code:
        raise ValueMismatch(f"PLC answered {type_name(code)}, the config declares {logix_type}")
    if len(data) < 2 + expected.size * count:
        raise ValueMismatch(f"PLC answered {len(data) - 2} bytes for {count} x {logix_type}")
    values = struct.unpack_from(f"<{count}{expected.fmt}", data, 2)
    if logix_type == "BOOL":
        flags = [bool(v) for v in values]
        return flags if address.count is not None else flags[0]
    numbers = [float(v) for v in values] if logix_type in ("REAL", "LREAL") else [int(v) for v in values]
    if address.count is not None:
        return numbers
    return numbers[0]


def _decode_string(code: int, data: bytes) -> str:
    if code == STRUCT_MARK:
        # any string-shaped structure: DINT LEN then the characters (STRING, or a user STRING type)
        if len(data) < 8:
            raise ValueMismatch("structure reply too short for a STRING")
        (length,) = struct.unpack_from("<i", data, 4)
        if not 0 <= length <= len(data) - 8:
            raise ValueMismatch(f"STRING LEN {length} exceeds its {len(data) - 8} data bytes")
        return data[8 : 8 + length].decode("latin-1")
    if code == CIP_STRING and len(data) >= 4:
        (length,) = struct.unpack_from("<H", data, 2)
        return data[4 : 4 + length].decode("latin-1")
    if code == SHORT_STRING and len(data) >= 3:
        return data[3 : 3 + data[2]].decode("latin-1")
    raise ValueMismatch(f"PLC answered {type_name(code)}, the config declares STRING")


def encode_write(logix_type: str, address: TagAddress, value: MetricValue, *, handle: int = STRING_HANDLE) -> bytes:
    """A Write Tag request for one element; ``ValueError`` says why a value does not fit the type."""
    path = tag_path(address)
    if logix_type == "STRING":
        if not isinstance(value, str):
            raise ValueError(f"a STRING takes text, not {type(value).__name__}")
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise ValueError(f"a STRING holds Latin-1 characters only: {exc.reason} at {exc.start}") from exc
        if len(raw) > STRING_DATA:
            raise ValueError(f"{len(raw)} characters exceed a STRING's {STRING_DATA}")
        body = struct.pack("<i", len(raw)) + raw.ljust(STRING_SIZE - 4, b"\x00")
        return encode_request(WRITE_TAG, path, struct.pack("<HHH", STRUCT_MARK, handle, 1) + body)
    kind = ATOMIC_TYPES[logix_type]
    number = _fit(logix_type, value)
    return encode_request(WRITE_TAG, path, struct.pack("<HH", kind.code, 1) + struct.pack("<" + kind.fmt, number))


def _fit(logix_type: str, value: MetricValue) -> int | float:
    if logix_type == "BOOL":
        if not isinstance(value, bool | int) or value not in (0, 1):
            raise ValueError(f"a BOOL takes true/false, not {value!r}")
        return 1 if value else 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"a {logix_type} takes a number, not {type(value).__name__}")
    if logix_type in ("REAL", "LREAL"):
        if logix_type == "REAL" and math.isfinite(value) and abs(value) > 3.4028234663852886e38:
            raise ValueError(f"{value} is out of REAL range")
        return float(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"a {logix_type} takes a whole number, not {value}")
    bits = ATOMIC_TYPES[logix_type].size * 8
    low, high = (0, 2**bits - 1) if logix_type.startswith("U") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if not low <= int(value) <= high:
        raise ValueError(f"{int(value)} is out of {logix_type} range {low}..{high}")
    return int(value)
