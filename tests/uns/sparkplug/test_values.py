from __future__ import annotations

import struct

import pytest

from uns.sparkplug import DataType
from uns.sparkplug.values import decode_array, decode_scalar, encode_array, encode_scalar

# The examples of the Sparkplug 3.0 specification's array section whose bytes agree with its text.
_SPEC_ARRAYS = [
    (DataType.Int32Array, [123456789, 987654321], bytes.fromhex("15cd5b07b168de3a")),
    (DataType.UInt32Array, [52, 3293969225], bytes([0x34, 0, 0, 0, 0x49, 0xFB, 0x55, 0xC4])),
    (
        DataType.UInt64Array,
        [52, 16444743074749521625],
        bytes([0x34, 0, 0, 0, 0, 0, 0, 0, 0xD9, 0x9E, 0x02, 0xD1, 0xB2, 0x76, 0x37, 0xE4]),
    ),
    (
        DataType.BooleanArray,
        [False, False, True, True, False, True, False, False, True, True, False, True],
        bytes([0x0C, 0, 0, 0, 0x34, 0xD0]),
    ),
    (DataType.StringArray, ["ABC", "hello"], b"ABC\x00hello\x00"),
    (DataType.Int8Array, [-23, 123], bytes([0xE9, 0x7B])),
    (DataType.FloatArray, [1.5], struct.pack("<f", 1.5)),
    (DataType.BooleanArray, [], bytes(4)),
    (DataType.BooleanArray, [True] * 8, bytes([8, 0, 0, 0, 0xFF])),
    (DataType.StringArray, [], b""),
    (DataType.StringArray, ["", ""], b"\x00\x00"),
    (DataType.DateTimeArray, [-1], b"\xff" * 8),
]


@pytest.mark.parametrize(("datatype", "values", "data"), _SPEC_ARRAYS, ids=lambda x: getattr(x, "name", None))
def test_arrays_pack_and_unpack_as_the_spec_shows(datatype: DataType, values: list[object], data: bytes) -> None:
    assert encode_array(datatype, values) == data
    assert decode_array(datatype, data) == values


@pytest.mark.parametrize(
    ("datatype", "data", "reason"),
    [
        (DataType.Int16Array, b"\x01\x02\x03", "Int16Array byte length 3 is not a multiple of 2"),
        (DataType.DoubleArray, b"\x00" * 9, "not a multiple of 8"),
        (DataType.BooleanArray, b"\x01\x00", "needs a 4-byte count, got 2 bytes"),
        (DataType.BooleanArray, bytes([9, 0, 0, 0, 0xFF]), "9 values needs 2 bytes after the count, got 1"),
        (DataType.BooleanArray, bytes([1, 0, 0, 0, 0x80, 0]), "1 values needs 1 bytes after the count, got 2"),
        (DataType.StringArray, b"abc", "does not end with a NUL"),
        (DataType.StringArray, b"a\xff\x00", "byte 1 is not valid UTF-8"),
        (DataType.Int32, b"", "not an array datatype"),
    ],
)
def test_bad_array_bytes_are_rejected_saying_why(datatype: DataType, data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_array(datatype, data)


@pytest.mark.parametrize(
    ("datatype", "value", "field", "raw"),
    [
        (DataType.Int8, -1, "int_value", 0xFFFF_FFFF),
        (DataType.Int16, -32768, "int_value", 0xFFFF_8000),
        (DataType.Int32, 2**31 - 1, "int_value", 2**31 - 1),
        (DataType.Int64, -2, "long_value", 2**64 - 2),
        (DataType.UInt32, 2**32 - 1, "int_value", 2**32 - 1),
        (DataType.DateTime, 1_700_000_000_000, "long_value", 1_700_000_000_000),
        (DataType.Float, 2, "float_value", 2.0),
        (DataType.Boolean, False, "boolean_value", False),
        (DataType.UUID, "u", "string_value", "u"),
    ],
)
def test_scalars_encode_to_the_canonical_field(datatype: DataType, value: object, field: str, raw: object) -> None:
    assert encode_scalar(datatype, value) == (field, raw)
    assert decode_scalar(datatype, field, raw) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("datatype", "field", "raw", "reason"),
    [
        (DataType.Int8, "int_value", 0xFFFF_FF7F, "outside the Int8 range"),  # -129 sign-extended
        (DataType.Int8, "int_value", 256, "outside the Int8 range"),
        (DataType.Int16, "long_value", 2**32 - 1, "outside the Int16 range"),  # not sign-extended to 64 bits
        (DataType.UInt8, "int_value", 256, "outside the UInt8 range"),
        (DataType.UInt32, "long_value", 2**32, "outside the UInt32 range"),
        (DataType.Boolean, "int_value", 1, "Boolean value carried in int_value"),
        (DataType.Float, "int_value", 1, "Float value carried in int_value"),
        (DataType.String, "string_value", b"\xff", "not valid UTF-8"),
        (DataType.Bytes, "bytes_value", b"", "not a scalar datatype"),
    ],
)
def test_scalar_mismatches_are_rejected(datatype: DataType, field: str, raw: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_scalar(datatype, field, raw)  # type: ignore[arg-type]


def test_datatype_numbers_are_the_specs() -> None:
    assert [(d.name, d.value) for d in DataType][:3] == [("Unknown", 0), ("Int8", 1), ("Int16", 2)]
    assert DataType.PropertySetList.value == 21
    assert DataType.Int8Array.value == 22
    assert DataType.DateTimeArray.value == 34
    assert len(DataType) == 35
    assert next(d for d in DataType if d.is_array) is DataType.Int8Array
    assert [d.name for d in DataType if d.is_basic][-1] == "Text"
