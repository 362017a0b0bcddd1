"""FINS frames, pure: the 10-byte FINS header, commands and responses, and the FINS/TCP framing around them.

A FINS frame is ICF RSV GCT DNA DA1 DA2 SNA SA1 SA2 SID, then the command code (MRC SRC) and its
parameters; a response repeats the command code, then the two end-code bytes and the data. Over
UDP a datagram is one frame. Over TCP each frame is wrapped in a 16-byte header: ``FINS``, the
length of what follows the length field, a command (0 client node address request, 1 its answer,
2 FINS frame, 3 frame send error) and an error code; the connection opens with the node address
handshake (commands 0 and 1).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence

from bridges.fins.endcodes import EndCode
from model.bridges.fins_address import FinsAddress

__all__ = [
    "CONTROLLER_DATA_READ",
    "HEADER_SIZE",
    "MEMORY_AREA_READ",
    "MEMORY_AREA_WRITE",
    "MULTIPLE_MEMORY_AREA_READ",
    "TCP_CLIENT_NODE",
    "TCP_FRAME",
    "TCP_FRAME_ERROR",
    "TCP_HEADER_SIZE",
    "TCP_SERVER_NODE",
    "FinsCommand",
    "FinsFrameError",
    "FinsHeader",
    "FinsNode",
    "FinsResponse",
    "TcpHeader",
    "command_frame",
    "memory_read_body",
    "memory_write_body",
    "multiple_read_body",
    "parse_command",
    "parse_response",
    "parse_tcp_header",
    "response_frame",
    "tcp_packet",
]

MEMORY_AREA_READ = 0x0101
MEMORY_AREA_WRITE = 0x0102
MULTIPLE_MEMORY_AREA_READ = 0x0104
CONTROLLER_DATA_READ = 0x0501

HEADER_SIZE = 10
TCP_HEADER_SIZE = 16
TCP_MAGIC = b"FINS"
TCP_CLIENT_NODE = 0
"""Client -> server: node address data send (the client's node, 0 = assign one)."""
TCP_SERVER_NODE = 1
"""Server -> client: the client's and the server's node addresses."""
TCP_FRAME = 2
TCP_FRAME_ERROR = 3

_ICF_COMMAND = 0x80  # gateway usage on, command, response required
_ICF_RESPONSE = 0xC0  # gateway usage on, response
_ICF_IS_RESPONSE = 0x40
_GCT = 0x02  # gateway count: relay through at most 2 networks (W342's value for CS/CJ)


class FinsFrameError(ValueError):
    """Bytes that are not a FINS frame; ``offset`` is the byte where they stopped making sense."""

    def __init__(self, offset: int, reason: str) -> None:
        self.offset = offset
        self.reason = reason
        super().__init__(f"FINS frame at byte {offset}: {reason}")


@dataclasses.dataclass(frozen=True, slots=True)
class FinsNode:
    """A FINS address: network (0 = local), node, unit (0 = the CPU unit)."""

    network: int = 0
    node: int = 0
    unit: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class FinsHeader:
    """The 10-byte FINS header."""

    icf: int
    dest: FinsNode
    source: FinsNode
    sid: int
    gct: int = _GCT
    rsv: int = 0

    @property
    def is_response(self) -> bool:
        """Bit 6 of ICF: a response rather than a command."""
        return bool(self.icf & _ICF_IS_RESPONSE)

    def encode(self) -> bytes:
        """The header's bytes."""
        d, s = self.dest, self.source
        return bytes((self.icf, self.rsv, self.gct, d.network, d.node, d.unit, s.network, s.node, s.unit, self.sid))

    @classmethod
    def decode(cls, frame: bytes) -> FinsHeader:
        """The header of ``frame``; raises FinsFrameError if it is shorter than a header."""
        if len(frame) < HEADER_SIZE:
            raise FinsFrameError(len(frame), f"{len(frame)} bytes, a FINS header needs {HEADER_SIZE}")
        icf, rsv, gct, dna, da1, da2, sna, sa1, sa2, sid = frame[:HEADER_SIZE]
        return cls(icf, FinsNode(dna, da1, da2), FinsNode(sna, sa1, sa2), sid, gct, rsv)


@dataclasses.dataclass(frozen=True, slots=True)
class FinsCommand:
    """A command as a PLC receives it."""

    header: FinsHeader
    code: int
    body: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class FinsResponse:
    """A response as a client receives it."""

    header: FinsHeader
    code: int
    """The command code it answers."""
    end: EndCode
    data: bytes


def command_frame(*, dest: FinsNode, source: FinsNode, sid: int, code: int, body: bytes = b"") -> bytes:
    """A command frame asking for a response."""
    return FinsHeader(_ICF_COMMAND, dest, source, sid).encode() + code.to_bytes(2, "big") + body


def response_frame(command: FinsHeader, code: int, end_code: int, data: bytes = b"") -> bytes:
    """The response to ``command``: source and destination swapped, same SID, end code, data."""
    header = FinsHeader(_ICF_RESPONSE, command.source, command.dest, command.sid)
    return header.encode() + code.to_bytes(2, "big") + end_code.to_bytes(2, "big") + data


def parse_command(frame: bytes) -> FinsCommand:
    """A command frame; raises FinsFrameError (too short, or a response)."""
    header = FinsHeader.decode(frame)
    if header.is_response:
        raise FinsFrameError(0, f"ICF 0x{header.icf:02X} marks a response, not a command")
    if len(frame) < HEADER_SIZE + 2:
        raise FinsFrameError(len(frame), "no command code after the header")
    return FinsCommand(header, int.from_bytes(frame[10:12], "big"), bytes(frame[12:]))


def parse_response(frame: bytes) -> FinsResponse:
    """A response frame; raises FinsFrameError (too short, or a command)."""
    header = FinsHeader.decode(frame)
    if not header.is_response:
        raise FinsFrameError(0, f"ICF 0x{header.icf:02X} marks a command, not a response")
    if len(frame) < HEADER_SIZE + 4:
        raise FinsFrameError(len(frame), "no command code and end code after the header")
    return FinsResponse(
        header, int.from_bytes(frame[10:12], "big"), EndCode.from_bytes(frame[12], frame[13]), bytes(frame[14:])
    )


def memory_read_body(address: FinsAddress, count: int, *, bits: bool = False) -> bytes:
    """Memory Area Read (0101): ``count`` words (or bits) from ``address``."""
    return address.wire(bit_access=bits) + count.to_bytes(2, "big")


def memory_write_body(address: FinsAddress, count: int, data: bytes, *, bits: bool = False) -> bytes:
    """Memory Area Write (0102): ``count`` words (2 bytes each) or bits (1 byte each) from ``address``."""
    return address.wire(bit_access=bits) + count.to_bytes(2, "big") + data


def multiple_read_body(addresses: Sequence[FinsAddress]) -> bytes:
    """Multiple Memory Area Read (0104): one word per word address, one bit per bit address."""
    return b"".join(address.wire(bit_access=address.bit is not None) for address in addresses)


@dataclasses.dataclass(frozen=True, slots=True)
class TcpHeader:
    """The FINS/TCP header of one packet."""

    length: int
    """Bytes after the header."""
    command: int
    error: int


def tcp_packet(command: int, payload: bytes = b"", *, error: int = 0) -> bytes:
    """A FINS/TCP packet: header (length counts command, error and payload) and payload."""
    return TCP_MAGIC + struct.pack(">III", 8 + len(payload), command, error) + payload


def parse_tcp_header(data: bytes, *, max_length: int = 4096) -> TcpHeader:
    """The 16-byte FINS/TCP header; raises FinsFrameError on a wrong magic or an absurd length."""
    if len(data) < TCP_HEADER_SIZE:
        raise FinsFrameError(len(data), f"FINS/TCP header needs {TCP_HEADER_SIZE} bytes")
    if data[:4] != TCP_MAGIC:
        raise FinsFrameError(0, f"FINS/TCP header starts {bytes(data[:4])!r}, not b'FINS'")
    length, command, error = struct.unpack(">III", data[4:16])
    if length < 8 or length - 8 > max_length:
        raise FinsFrameError(4, f"FINS/TCP length {length} is outside 8..{max_length + 8}")
    return TcpHeader(length - 8, command, error)
