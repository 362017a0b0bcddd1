"""FINS frames and end codes against Omron's reference (W342), not only against our own simulator."""

from __future__ import annotations

import pytest

from bridges.fins.endcodes import EndCode, tcp_error_text
from bridges.fins.frame import (
    MEMORY_AREA_READ,
    TCP_CLIENT_NODE,
    TCP_FRAME,
    TCP_SERVER_NODE,
    FinsFrameError,
    FinsHeader,
    FinsNode,
    command_frame,
    memory_read_body,
    memory_write_body,
    multiple_read_body,
    parse_command,
    parse_response,
    parse_tcp_header,
    response_frame,
    tcp_packet,
)
from model.bridges.fins_address import parse_address


def test_memory_area_read_frame_is_byte_for_byte_w342() -> None:
    # W342's example layout: ICF 80, RSV 00, GCT 02, DNA DA1 DA2, SNA SA1 SA2, SID, MRC SRC 01 01,
    # area 82 (DM word), address 0064 00 (D100), 2 items
    frame = command_frame(
        dest=FinsNode(0, 10, 0),
        source=FinsNode(0, 34, 0),
        sid=0x19,
        code=MEMORY_AREA_READ,
        body=memory_read_body(parse_address("D100"), 2),
    )
    assert frame.hex(" ") == "80 00 02 00 0a 00 00 22 00 19 01 01 82 00 64 00 00 02"


def test_write_and_multiple_read_bodies() -> None:
    assert memory_write_body(parse_address("W10.05"), 1, b"\x01", bits=True).hex() == "31000a05000101"
    assert memory_write_body(parse_address("D5"), 1, b"\x12\x34").hex() == "8200050000011234"
    body = multiple_read_body([parse_address("D100"), parse_address("CIO0.01"), parse_address("E2_7")])
    assert body.hex(" ") == "82 00 64 00 30 00 00 01 a2 00 07 00"


def test_response_swaps_source_and_destination_and_keeps_the_sid() -> None:
    command = parse_command(command_frame(dest=FinsNode(1, 2, 0), source=FinsNode(0, 34, 0), sid=7,
                                          code=MEMORY_AREA_READ, body=b"\x82\x00\x00\x00\x00\x01"))  # fmt: skip
    reply = parse_response(response_frame(command.header, command.code, 0x0000, b"\xab\xcd"))
    assert reply.header.dest == FinsNode(0, 34, 0)
    assert reply.header.source == FinsNode(1, 2, 0)
    assert (reply.header.sid, reply.code, reply.end.ok, reply.data) == (7, MEMORY_AREA_READ, True, b"\xab\xcd")
    assert reply.header.icf == 0xC0


@pytest.mark.parametrize(
    ("mres", "sres", "code", "ok", "relay", "fatal", "non_fatal", "text"),
    [
        (0x00, 0x00, 0x0000, True, False, False, False, "end code 0x0000 normal completion"),
        (0x00, 0x40, 0x0000, True, False, False, True, "end code 0x0000 normal completion (PLC non-fatal error)"),
        (0x00, 0x80, 0x0000, True, False, True, False, "end code 0x0000 normal completion (PLC fatal error)"),
        (0x11, 0x03, 0x1103, False, False, False, False, "end code 0x1103 address range error"),
        (0x11, 0x44, 0x1104, False, False, False, True, "end code 0x1104 address range exceeded (PLC non-fatal error)"),
        (0x21, 0x01, 0x2101, False, False, False, False, "end code 0x2101 read-only"),
        (0x11, 0x01, 0x1101, False, False, False, False, "end code 0x1101 area classification missing"),
        (0x82, 0x05, 0x0205, False, True, False, False, "end code 0x0205 response timeout (network relay error)"),
        (0x05, 0x02, 0x0502, False, False, False, False, "end code 0x0502 no routing tables"),
        (0x7E, 0x3F, 0x7E3F, False, False, False, False, "end code 0x7E3F unknown (unknown class)"),
    ],
)
def test_end_code_flags_are_masked_before_the_lookup(
    mres: int, sres: int, code: int, ok: bool, relay: bool, fatal: bool, non_fatal: bool, text: str
) -> None:
    end = EndCode.from_bytes(mres, sres)
    assert (end.code, end.ok, end.relay_error, end.fatal_cpu_error, end.non_fatal_cpu_error) == (
        code, ok, relay, fatal, non_fatal,
    )  # fmt: skip
    assert str(end).startswith(text)


def test_route_end_codes_are_told_apart_from_address_ones() -> None:
    assert EndCode.from_bytes(0x05, 0x02).route
    assert EndCode.from_bytes(0x82, 0x01).route
    assert not EndCode.from_bytes(0x11, 0x03).route
    assert not EndCode.from_bytes(0x21, 0x01).route


def test_fins_tcp_header() -> None:
    packet = tcp_packet(TCP_FRAME, b"\x80\x00")
    assert packet.hex(" ") == "46 49 4e 53 00 00 00 0a 00 00 00 02 00 00 00 00 80 00"
    header = parse_tcp_header(packet)
    assert (header.length, header.command, header.error) == (2, TCP_FRAME, 0)
    with pytest.raises(FinsFrameError, match="not b'FINS'"):
        parse_tcp_header(b"HTTP" + packet[4:])
    with pytest.raises(FinsFrameError, match="at byte 4: FINS/TCP length 99999"):
        parse_tcp_header(b"FINS" + (99999).to_bytes(4, "big") + bytes(8))
    assert tcp_error_text(0x20) == "FINS/TCP error 0x20 all connections are in use"
    assert tcp_error_text(0x7F) == "FINS/TCP error 0x7F unknown error code"


def test_bad_frames_name_the_offset() -> None:
    with pytest.raises(FinsFrameError, match="at byte 3: 3 bytes, a FINS header needs 10"):
        FinsHeader.decode(b"\x80\x00\x02")
    with pytest.raises(FinsFrameError, match="marks a command, not a response"):
        parse_response(bytes(14).replace(b"\x00", b"\x80", 1))
    with pytest.raises(FinsFrameError, match="at byte 12: no command code and end code"):
        parse_response(b"\xc0" + bytes(11))


def test_fins_tcp_node_address_handshake_is_w342s() -> None:
    # client -> server: command 0, length 12, client node 0 = "assign me one"
    assert tcp_packet(TCP_CLIENT_NODE, bytes(4)).hex(" ") == (
        "46 49 4e 53 00 00 00 0c 00 00 00 00 00 00 00 00 00 00 00 00"
    )
    # server -> client: command 1, length 16, the client's node then the server's
    answer = tcp_packet(TCP_SERVER_NODE, (0x22).to_bytes(4, "big") + (0x0A).to_bytes(4, "big"))
    assert answer.hex(" ") == "46 49 4e 53 00 00 00 10 00 00 00 01 00 00 00 00 00 00 00 22 00 00 00 0a"
