"""Values in Omron words: known vectors (low word first, each word big-endian), round trips, range errors."""

from __future__ import annotations

import math

import pytest

from bridges.fins.codec import decode, encode
from model.bridges.fins import FinsType

# type, value, wire bytes of its words as they sit from the tag's first word on
VECTORS: list[tuple[FinsType, bool | int | float | str, str]] = [
    ("int16", -2, "fffe"),
    ("uint16", 0x1234, "1234"),
    ("int32", 0x12345678, "56781234"),  # D100 = 0x5678 (low word), D101 = 0x1234
    ("int32", -1, "ffffffff"),
    ("int32", -65536, "0000ffff"),
    ("uint32", 0xFFFFFFFE, "fffeffff"),
    ("float32", 1.0, "00003f80"),
    ("float32", 123.45600128173828, "e97942f6"),
    ("float64", 1.0, "000000000000" + "3ff0"),
    ("float64", -2.5, "00000000" + "0000" + "c004"),
    ("string", "ABC", "41424300"),
]


@pytest.mark.parametrize(("type_", "value", "wire"), VECTORS)
def test_known_vectors(type_: FinsType, value: bool | int | float | str, wire: str) -> None:
    assert decode(bytes.fromhex(wire), type_) == value
    assert encode(value, type_, length=len(wire) // 4).hex() == wire


def test_strings_byte_order_and_padding() -> None:
    assert encode("ABC", "string", length=3).hex() == "414243000000"
    assert encode("ABC", "string", length=2, byte_order="low_first").hex() == "42410043"
    assert decode(bytes.fromhex("42410043"), "string", byte_order="low_first") == "ABC"
    with pytest.raises(ValueError, match="5 characters do not fit 2 words"):
        encode("ABCDE", "string", length=2)


def test_bits_and_bools() -> None:
    assert decode(bytes.fromhex("0020"), "bool", bit=5) is True
    assert decode(bytes.fromhex("0020"), "bool", bit=4) is False
    assert decode(bytes.fromhex("0100"), "bool") is True
    assert encode(True, "bool").hex() == "0001"


@pytest.mark.parametrize(
    ("value", "type_", "words"),
    [
        (70000, "int16", "out of range of a int16"),
        (-1, "uint16", "out of range of a uint16"),
        (2**32, "uint32", "out of range of a uint32"),
        (1.5, "int32", "not a whole number"),
        (math.inf, "int32", "not a whole number"),
        (1e39, "float32", "out of range of a float32"),
        ("x", "int16", "is text, not a number"),
    ],
)
def test_values_that_do_not_fit_say_why(value: object, type_: FinsType, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        encode(value, type_)  # type: ignore[arg-type]
