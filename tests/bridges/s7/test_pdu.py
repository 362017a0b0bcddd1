"""S7 PDUs built and parsed as the Wireshark s7comm dissector reads them: items, fill bytes, return codes."""

from __future__ import annotations

import pytest

from bridges.s7.pdu import S7HeaderError, S7PduError, build_read, build_write, parse_read, parse_write
from bridges.s7.plan import Chunk
from model.bridges.s7_address import S7Area


def _ack(params: bytes, data: bytes, error: int = 0) -> bytes:
    return (
        bytes([0x32, 3, 0, 0, 0, 7])
        + len(params).to_bytes(2)
        + len(data).to_bytes(2)
        + error.to_bytes(2)
        + params
        + data
    )


def test_a_read_request_addresses_bytes_by_bit_address_and_timers_by_number() -> None:
    chunks = [Chunk(0, 0, 3, S7Area.DB, 5, 10), Chunk(1, 0, 2, S7Area.TM, 0, 7)]
    assert build_read(7, chunks).hex() == (
        "3201" "0000" "0007" "001a" "0000"  # job, sequence 7, 2 + 2 x 12 parameter bytes, no data
        "0402"  # read var, 2 items
        "120a10" "02" "0003" "0005" "84" "000050"  # BYTE x3 of DB5 at bit address 80 (byte 10)
        "120a10" "1d" "0002" "0000" "1d" "000007"  # TIMER x2 from timer 7
    )  # fmt: skip


def test_a_bit_write_is_a_bit_item_with_a_bit_length_of_one() -> None:
    assert build_write(1, S7Area.MK, 0, 10, b"\x01", bit=1).hex() == (
        "3201" "0000" "0001" "000e" "0005" "0501" "120a10" "01" "0001" "0000" "83" "000051" "00" "03" "0001" "01"
    )  # fmt: skip


def test_items_with_fill_bytes_error_codes_and_lengths_in_bits_or_bytes() -> None:
    data = (
        bytes.fromhex("ff040018") + b"abc" + b"\x00"  # 24 bits = 3 bytes, then a fill byte (not the last item)
        + bytes.fromhex("0a000000")  # object does not exist: no data
        + bytes.fromhex("ff090004") + b"wxyz"  # octet string (timers): length in bytes
        + bytes.fromhex("ff030001") + b"\x01" + b"\x00"  # one bit: one byte, then a fill byte
        + bytes.fromhex("ff070004") + b"\x40\x60\x00\x00"  # REAL: length in bytes; last item, no fill
    )  # fmt: skip
    sequence, items = parse_read(_ack(bytes([4, 5]), data), 5)
    assert sequence == 7
    assert [(item.code, item.data) for item in items] == [
        (0xFF, b"abc"),
        (0x0A, b""),
        (0xFF, b"wxyz"),
        (0xFF, b"\x01"),
        (0xFF, b"\x40\x60\x00\x00"),
    ]


@pytest.mark.parametrize(
    ("pdu", "items", "reason"),
    [
        (b"\x32\x03\x00", 1, "response of 3 bytes is shorter than the 12-byte header"),
        (bytes.fromhex("33030000000700020000000004 01".replace(" ", "")), 1, "byte 0: protocol id 0x33"),
        (_ack(bytes([4, 2]), bytes.fromhex("ff040010") + b"ab"), 2, "byte 20: item 1 header is truncated"),
        (_ack(bytes([4, 1]), bytes.fromhex("ff040040") + b"ab"), 1, "byte 14: item 0 declares 8 bytes, 2 left"),
        (_ack(bytes([4, 3]), b""), 1, "byte 13: 3 items answered, 1 asked"),
        (_ack(bytes([5, 1]), b"\xff"), 1, "byte 12: function 0x05, expected 0x04"),
    ],
)
def test_bad_responses_name_the_byte(pdu: bytes, items: int, reason: str) -> None:
    with pytest.raises(S7PduError, match=reason):
        parse_read(pdu, items)


def test_header_errors_and_write_return_codes() -> None:
    with pytest.raises(S7HeaderError, match="error 0x8104 function not available"):
        parse_read(bytes.fromhex("320200000007000000008104"), 1)
    assert parse_write(_ack(bytes([5, 1]), b"\x05")) == (7, 0x05)
