"""Pure codec: known register vectors per type and order, round trips, pymodbus as a reference, errors."""

from __future__ import annotations

import math
import re
from typing import Literal

import pytest
from pymodbus.client import AsyncModbusTcpClient

from bridges.modbus.codec import (
    ORDERS,
    TYPES,
    Kind,
    Order,
    RegisterCodec,
    decimals_of,
    decode,
    encode,
    register_count,
)

# Known vectors: the value and the registers it sits in, first register first.
VECTORS: list[tuple[Kind, Order, list[int], object]] = [
    ("bool", "ABCD", [1], True),
    ("bool", "DCBA", [0], False),
    ("int16", "ABCD", [0xFFFE], -2),
    ("int16", "CDAB", [0xFFFE], -2),
    ("int16", "BADC", [0xFEFF], -2),
    ("int16", "DCBA", [0xFEFF], -2),
    ("uint16", "ABCD", [0x1234], 0x1234),
    ("uint16", "BADC", [0x3412], 0x1234),
    ("int32", "ABCD", [0x1234, 0x5678], 0x12345678),
    ("int32", "CDAB", [0x5678, 0x1234], 0x12345678),
    ("int32", "BADC", [0x3412, 0x7856], 0x12345678),
    ("int32", "DCBA", [0x7856, 0x3412], 0x12345678),
    ("int32", "ABCD", [0xFFFF, 0xFFFF], -1),
    ("uint32", "ABCD", [0xFFFF, 0xFFFE], 0xFFFFFFFE),
    ("uint32", "CDAB", [0xFFFE, 0xFFFF], 0xFFFFFFFE),
    ("float32", "ABCD", [0x42F6, 0xE979], 123.45600128173828),
    ("float32", "CDAB", [0xE979, 0x42F6], 123.45600128173828),
    ("float32", "BADC", [0xF642, 0x79E9], 123.45600128173828),
    ("float32", "DCBA", [0x79E9, 0xF642], 123.45600128173828),
    ("uint64", "ABCD", [0x0102, 0x0304, 0x0506, 0x0708], 0x0102030405060708),
    ("uint64", "CDAB", [0x0708, 0x0506, 0x0304, 0x0102], 0x0102030405060708),
    ("uint64", "BADC", [0x0201, 0x0403, 0x0605, 0x0807], 0x0102030405060708),
    ("uint64", "DCBA", [0x0807, 0x0605, 0x0403, 0x0201], 0x0102030405060708),
    ("int64", "ABCD", [0xFFFF] * 4, -1),
    ("int64", "ABCD", [0x8000, 0, 0, 0], -(2**63)),
    ("float64", "ABCD", [0x3FF0, 0, 0, 0], 1.0),
    ("float64", "CDAB", [0, 0, 0, 0x3FF0], 1.0),
    ("float64", "BADC", [0xF03F, 0, 0, 0], 1.0),
    ("float64", "DCBA", [0, 0, 0, 0xF03F], 1.0),
    ("string", "ABCD", [0x4142, 0x4300], "ABC"),
    ("string", "CDAB", [0x4142, 0x4300], "ABC"),  # word order never applies to text
    ("string", "BADC", [0x4241, 0x0043], "ABC"),
    ("string", "DCBA", [0x4241, 0x0043], "ABC"),
]


@pytest.mark.parametrize(("kind", "order", "words", "value"), VECTORS)
def test_known_vectors(kind: Kind, order: Order, words: list[int], value: object) -> None:
    assert decode(kind, order, words) == value
    assert encode(kind, order, value, length=len(words)) == words


SAMPLES: dict[str, list[object]] = {
    "bool": [True, False],
    "int16": [-(2**15), -1, 0, 1234, 2**15 - 1],
    "uint16": [0, 1, 0xABCD, 2**16 - 1],
    "int32": [-(2**31), -70000, 0, 2**31 - 1],
    "uint32": [0, 70000, 2**32 - 1],
    "int64": [-(2**63), -(2**40) - 7, 0, 2**63 - 1],
    "uint64": [0, 2**48 + 5, 2**64 - 1],
    "float32": [0.0, -1.5, 123.25, 2.0**100, -(2.0**-100)],  # float32-exact values
    "float64": [0.0, -1.5, math.pi, 1.0e300, -5e-310],
    "string": ["", "A", "PUMP-01", "éß"],
}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("kind", TYPES)
def test_every_type_and_order_round_trips(kind: Kind, order: Order) -> None:
    length = 4 if kind == "string" else None
    for value in SAMPLES[kind]:
        words = encode(kind, order, value, length=length)
        assert len(words) == register_count(kind, length)
        assert all(0 <= w <= 0xFFFF for w in words)
        assert decode(kind, order, words) == value, (kind, order, value, words)


def test_float32_nan_and_inf_pass() -> None:
    assert math.isnan(float(decode("float32", "ABCD", encode("float32", "ABCD", math.nan))))
    assert decode("float32", "CDAB", encode("float32", "CDAB", -math.inf)) == -math.inf


_PYMODBUS_TYPE = {
    "int16": AsyncModbusTcpClient.DATATYPE.INT16,
    "uint16": AsyncModbusTcpClient.DATATYPE.UINT16,
    "int32": AsyncModbusTcpClient.DATATYPE.INT32,
    "uint32": AsyncModbusTcpClient.DATATYPE.UINT32,
    "int64": AsyncModbusTcpClient.DATATYPE.INT64,
    "uint64": AsyncModbusTcpClient.DATATYPE.UINT64,
    "float32": AsyncModbusTcpClient.DATATYPE.FLOAT32,
    "float64": AsyncModbusTcpClient.DATATYPE.FLOAT64,
}


@pytest.mark.parametrize(("order", "word_order"), [("ABCD", "big"), ("CDAB", "little")])
@pytest.mark.parametrize("kind", sorted(_PYMODBUS_TYPE))
def test_agrees_with_pymodbus(kind: Kind, order: Order, word_order: Literal["big", "little"]) -> None:
    for value in SAMPLES[kind]:
        assert isinstance(value, int | float)
        reference = AsyncModbusTcpClient.convert_to_registers(value, _PYMODBUS_TYPE[kind], word_order=word_order)
        assert encode(kind, order, value) == reference


@pytest.mark.parametrize(
    ("codec", "words", "value"),
    [
        (RegisterCodec(kind="uint16", scale=0.1, offset=-10.0), [250], 15.0),
        (RegisterCodec(kind="int16", scale=0.5), [0xFFFC], -2.0),
        (RegisterCodec(kind="int32", order="CDAB", scale=0.001), [0x86A0, 0x0001], 100.0),
        (RegisterCodec(kind="float32", scale=2.0, offset=1.0), [0x3FC0, 0x0000], 4.0),
        (RegisterCodec(kind="uint16"), [7], 7),
    ],
)
def test_scale_and_offset(codec: RegisterCodec, words: list[int], value: float) -> None:
    assert codec.decode(words) == pytest.approx(value)
    assert codec.encode(value) == words


# (codec, registers, the value published exactly; repr is what a JSON encoder prints)
_ROUNDED: list[tuple[RegisterCodec, list[int], float]] = [
    (RegisterCodec(kind="int16", scale=0.1), [71], 7.1),  # 71 * 0.1 == 7.1000000000000005
    (RegisterCodec(kind="int16", scale=0.1), [0xFFB9], -7.1),
    (RegisterCodec(kind="uint16", scale=0.01), [41], 0.41),  # 0.41000000000000003
    (RegisterCodec(kind="uint16", scale=0.5), [3], 1.5),
    (RegisterCodec(kind="uint16", scale=0.001), [1001], 1.001),  # 1.0010000000000001
    (RegisterCodec(kind="uint16", scale=0.1, offset=0.05), [3], 0.35),  # offset's 2 decimals: 0.35000000000000003
    (RegisterCodec(kind="int32", scale=0.25, offset=-10), [0, 3], -9.25),  # exact already: unchanged
    (RegisterCodec(kind="uint16", scale=1e-05), [3], 3e-05),  # 3.0000000000000004e-05
    (RegisterCodec(kind="uint16", scale=0.1, decimals=0), [71], 7.0),  # an explicit setting wins
    (RegisterCodec(kind="uint16", scale=0.001, decimals=2), [1234], 1.23),
    (RegisterCodec(kind="float32", decimals=2), [0x42F6, 0xE979], 123.46),  # 123.45600128173828
    (RegisterCodec(kind="float32", scale=0.1), [0x42F6, 0xE979], 12.345600128173828),  # a float: not implied
    (RegisterCodec(kind="uint16", decimals=3), [7], 7),  # unscaled integers stay integers
]


@pytest.mark.parametrize(("codec", "words", "value"), _ROUNDED)
def test_scaled_values_carry_the_decimals_their_scale_implies(
    codec: RegisterCodec, words: list[int], value: float
) -> None:
    decoded = codec.decode(words)
    assert decoded == value
    assert repr(decoded) == repr(value)


@pytest.mark.parametrize(
    ("number", "decimals"), [(0.1, 1), (0.01, 2), (0.5, 1), (0.001, 3), (0.25, 2), (1e-05, 5), (2.0, 0), (100.0, 0)]
)
def test_decimals_of(number: float, decimals: int) -> None:
    assert decimals_of(number) == decimals


def test_scaled_write_rounds_to_the_nearest_raw_value() -> None:
    codec = RegisterCodec(kind="uint16", scale=0.1)
    assert codec.encode(12.34) == [123]
    assert codec.scaled
    assert not RegisterCodec(kind="bool", scale=2.0).scaled


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("int16", 40000, "int16 holds -32768..32767 (got 40000)"),
        ("uint16", -1, "uint16 holds 0..65535 (got -1)"),
        ("uint64", 2**64, "uint64 holds 0..18446744073709551615"),
        ("int32", 1.5, "int32 needs a whole number (got 1.5)"),
        ("int32", "7", "int32 needs a number (got '7')"),
        ("float32", True, "float32 needs a number (got True)"),
        ("float32", 1e39, "float32 holds ±3.4028235e38"),
        ("bool", 2, "bool needs true/false (got 2)"),
        ("string", 5, "string needs text (got 5)"),
        ("string", "ABCDE", "string of 5 bytes does not fit 2 registers (4 bytes)"),
    ],
)
def test_encode_errors_name_type_and_limit(kind: Kind, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        encode(kind, "ABCD", value, length=2)


def test_scaled_value_out_of_range_names_the_type() -> None:
    with pytest.raises(ValueError, match=r"uint16 holds 0\.\.65535 \(got 70000\)"):
        RegisterCodec(kind="uint16", scale=0.1).encode(7000.0)


@pytest.mark.parametrize(("kind", "words"), [("int32", [1]), ("float64", [1, 2]), ("bool", [1, 0])])
def test_decode_wrong_register_count(kind: Kind, words: list[int]) -> None:
    with pytest.raises(ValueError, match="takes"):
        decode(kind, "ABCD", words)
