"""SLMP value codec: low word first, GX Works string byte order, ranges."""

from __future__ import annotations

import struct

import pytest

from bridges.slmp.codec import decode, encode


@pytest.mark.parametrize(
    ("type_", "value", "words"),
    [
        ("int16", -2, [0xFFFE]),
        ("uint16", 65535, [0xFFFF]),
        ("int32", 0x12345678, [0x5678, 0x1234]),  # low word first: D100 = 0x5678, D101 = 0x1234
        ("uint32", 3456789012, [3456789012 & 0xFFFF, 3456789012 >> 16]),
        ("float32", 1.0, [0x0000, 0x3F80]),
        ("float64", 1.0, [0, 0, 0, 0x3FF0]),
        ("string", "AB", [0x4241]),  # "A" in the low byte, as GX Works stores a String
        ("string", "ABC", [0x4241, 0x0043]),
        ("wstring", "Ü", [0x00DC, 0]),
    ],
)
def test_round_trip(type_: str, value: object, words: list[int]) -> None:
    length = len(words) if type_ in ("string", "wstring") else None
    assert encode(type_, value, length=length) == words  # type: ignore[arg-type]
    assert decode(type_, words) == value  # type: ignore[arg-type]


def test_bits_pick_their_bit_of_the_word() -> None:
    assert [decode("bool", [0b1000_0000_0000_0100], bit) for bit in (0, 2, 15)] == [False, True, True]
    assert encode("bool", True) == [1]


def test_float32_matches_ieee_little_endian_bytes() -> None:
    words = encode("float32", -1234.5)
    assert struct.unpack("<f", struct.pack("<2H", *words))[0] == -1234.5


def test_strings_stop_at_the_first_nul_and_replace_bad_bytes() -> None:
    assert decode("string", [0x4241, 0x0000, 0x4443]) == "AB"
    assert decode("string", [0xFF41]) == "A\ufffd"


@pytest.mark.parametrize(
    ("type_", "value", "message"),
    [
        ("int16", 40000, r"int16 holds -32768..32767 \(got 40000\)"),
        ("uint32", -1, "uint32 holds 0..4294967295"),
        ("int32", 1.5, "needs a whole number"),
        ("float32", 1e39, "float32 holds"),
        ("float64", "x", "needs a number"),
        ("bool", 2, "bool needs true/false"),
        ("string", 5, "string needs text"),
    ],
)
def test_values_that_do_not_fit_are_refused_naming_the_limit(type_: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode(type_, value, length=2)  # type: ignore[arg-type]


def test_text_longer_than_its_words_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit 2 words"):
        encode("string", "ABCDE", length=2)


def test_wrong_word_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="float64 takes 4 words, got 2"):
        decode("float64", [0, 0])
