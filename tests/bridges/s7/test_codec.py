"""S7 values to and from bytes: round trips per type, and bad bytes naming the address and byte."""

from __future__ import annotations

import pytest

from bridges.s7.codec import S7CodecError, decode, encode
from model.bridges.s7_address import parse_address
from tests.bridges.s7.servers import DT_MS


@pytest.mark.parametrize(
    ("type_name", "raw", "value"),
    [
        ("BYTE", "ff", 255),
        ("SINT", "80", -128),
        ("WORD", "beef", 0xBEEF),
        ("INT", "fb2e", -1234),
        ("DWORD", "deadbeef", 0xDEADBEEF),
        ("DINT", "80000000", -(2**31)),
        ("REAL", "40600000", 3.5),
        ("LREAL", "3ff8000000000000", 1.5),
        ("LINT", "ffffffffffffffff", -1),
        ("ULINT", "ffffffffffffffff", 2**64 - 1),
        ("TIME", "fffffc18", -1000),
        ("CHAR", "41", "A"),
        ("DATE_AND_TIME", "2403051430151233", DT_MS),
        ("S5TIME", "3999", 9_990_000),
        ("COUNTER", "0999", 999),
    ],
)
def test_round_trip(type_name: str, raw: str, value: object) -> None:
    words = {"WORD": "W", "INT": "W", "S5TIME": "W", "COUNTER": "W"}
    width = words.get(type_name) or {"DWORD": "D", "DINT": "D", "REAL": "D", "TIME": "D"}.get(type_name, "B")
    address = parse_address(f"DB1.DB{width}0", type_name)
    assert decode(address, bytes.fromhex(raw)) == value
    offset, data = encode(address, value)
    assert offset == 0
    if type_name == "DATE_AND_TIME":
        assert data.hex()[:15] == raw[:15]  # the weekday nibble is computed
    else:
        assert data.hex() == raw


def test_strings_keep_the_declared_maximum_and_write_from_the_length_byte() -> None:
    string = parse_address("DB1.DBB0", "STRING", 8)
    assert decode(string, bytes([8, 3]) + b"abc" + bytes(5)) == "abc"
    assert encode(string, "héllo") == (1, bytes([5]) + "héllo".encode("latin-1"))
    wide = parse_address("DB1.DBB0", "WSTRING", 4)
    assert decode(wide, bytes.fromhex("00040002") + "€x".encode("utf-16-be") + bytes(4)) == "€x"
    assert encode(wide, "€") == (2, bytes.fromhex("0001") + "€".encode("utf-16-be"))


@pytest.mark.parametrize(
    ("address", "type_name", "raw", "reason"),
    [
        ("DB1.DBB10", "STRING", "0203" + "00" * 2, "DB1.DBB10: STRING header at byte 11: current length 3"),
        ("DB1.DBB10", "DATE_AND_TIME", "24130514301512" + "33", "not a DATE_AND_TIME at byte 10"),
        ("DB1.DBB10", "DATE_AND_TIME", "2a03051430151233", "byte 10 is not BCD"),
        ("C3", None, "0a00", "C3: byte 3 is not BCD"),
        ("DB1.DBB0", "DTL", "07e80d05030e1e0f00000000", "not a DTL at byte 0: month must be in 1..12"),
    ],
)
def test_bad_bytes_name_address_and_byte(address: str, type_name: str | None, raw: str, reason: str) -> None:
    parsed = parse_address(address, type_name, 2 if type_name == "STRING" else None)
    with pytest.raises(S7CodecError, match=reason):
        decode(parsed, bytes.fromhex(raw))


def test_a_dtl_read_and_written() -> None:
    address = parse_address("DB1.DBB0", "DTL")
    raw = bytes.fromhex("07e80305030e1e0f075bcd15")  # 2024-03-05 (Tue) 14:30:15.123456789
    assert decode(address, raw) == DT_MS
    assert encode(address, DT_MS) == (0, bytes.fromhex("07e80305030e1e0f0754d4c0"))  # ms precision
