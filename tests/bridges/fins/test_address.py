"""Omron address notation: every spelling Omron's tools use, its FINS area codes and wire bytes, and errors."""

from __future__ import annotations

import pytest

from model.bridges.fins_address import FinsAddressError, parse_address

# text, canonical form, word area code, bit area code, wire bytes of the word (or bit) access
CASES = [
    ("D100", "D100", 0x82, 0x02, "82006400"),
    ("DM100", "D100", 0x82, 0x02, "82006400"),
    ("d32767", "D32767", 0x82, 0x02, "827fff00"),
    ("D100.15", "D100.15", 0x82, 0x02, "0200640f"),
    ("W10.05", "W10.05", 0xB1, 0x31, "31000a05"),
    ("WR10", "W10", 0xB1, 0x31, "b1000a00"),
    ("CIO100.00", "CIO100.00", 0xB0, 0x30, "30006400"),
    ("CIO6143", "CIO6143", 0xB0, 0x30, "b017ff00"),
    ("0.01", "CIO0.01", 0xB0, 0x30, "30000001"),
    ("H5", "H5", 0xB2, 0x32, "b2000500"),
    ("HR511.3", "H511.03", 0xB2, 0x32, "3201ff03"),
    ("A100", "A100", 0xB3, 0x33, "b3006400"),
    ("AR448", "A448", 0xB3, 0x33, "b301c000"),
    ("E0_100", "E0_100", 0xA0, 0x20, "a0006400"),
    ("EM0:100", "E0_100", 0xA0, 0x20, "a0006400"),
    ("EC_1", "EC_1", 0xAC, 0x2C, "ac000100"),
    ("EF_1.02", "EF_1.02", 0xAF, 0x2F, "2f000102"),
    ("E10_0", "E10_0", 0x60, 0xE0, "60000000"),
    ("EM18:7", "E18_7", 0x68, 0xE8, "68000700"),
    ("EM100", "EM100", 0x98, 0x0A, "98006400"),
    ("EM100.04", "EM100.04", 0x98, 0x0A, "0a006404"),
]


@pytest.mark.parametrize(("text", "canonical", "word_code", "bit_code", "wire"), CASES)
def test_parses_omron_notation_to_area_codes(
    text: str, canonical: str, word_code: int, bit_code: int, wire: str
) -> None:
    address = parse_address(text)
    assert str(address) == canonical
    assert (address.word_code, address.bit_code) == (word_code, bit_code)
    assert address.wire(bit_access=address.bit is not None).hex() == wire
    assert parse_address(str(address)) == address  # the canonical form round-trips


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("D32768", "word 32768 is past the D area's last word 32767"),
        ("W512", "word 512 is past the W area's last word 511"),
        ("CIO6144", "past the CIO area's last word 6143"),
        ("A960", "past the A area's last word 959"),
        ("D100.16", "bit 16 does not exist"),
        ("E19_0", "EM bank 19 (hex) does not exist"),
        ("X100", "not an Omron address"),
        ("D", "not an Omron address"),
        ("D-1", "not an Omron address"),
        ("E0_", "not an Omron address"),
    ],
)
def test_errors_name_the_field_and_the_address(text: str, words: str) -> None:
    with pytest.raises(FinsAddressError) as caught:
        parse_address(text, field="devices[0].tags[3].address")
    message = str(caught.value)
    assert message.startswith(f"devices[0].tags[3].address: {text!r}: ")
    assert words in message


def test_a_bit_address_shifted_is_the_following_word() -> None:
    assert str(parse_address("W10.05").shifted(2)) == "W12"
    assert str(parse_address("E2_100").shifted(1)) == "E2_101"
