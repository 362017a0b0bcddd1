"""EtherNet/IP encapsulation, pure: the 24-byte header, Common Packet Format items, Forward Open/Close.

From the CIP specification Vol. 2 (EtherNet/IP adaptation: encapsulation commands, CPF items) and
Vol. 1 (Connection Manager services). The client and the demo server share it.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence
from typing import Final

from bridges.ethernetip.cip import CipDecodeError, logical_path

__all__ = [
    "CONNECTED_ADDRESS",
    "CONNECTED_DATA",
    "CONNECTION_MANAGER",
    "FORWARD_CLOSE",
    "FORWARD_OPEN",
    "HEADER",
    "LARGE_FORWARD_OPEN",
    "LIST_IDENTITY",
    "MESSAGE_ROUTER",
    "NULL_ADDRESS",
    "REGISTER_SESSION",
    "SEND_RR_DATA",
    "SEND_UNIT_DATA",
    "UNCONNECTED_DATA",
    "UNCONNECTED_SEND",
    "UNREGISTER_SESSION",
    "Encapsulation",
    "ForwardOpen",
    "decode_cpf",
    "decode_forward_open",
    "encode_cpf",
    "encode_forward_close",
    "encode_forward_open",
    "encode_unconnected_send",
]

HEADER: Final = struct.Struct("<HHII8sI")
"""command, length, session handle, status, sender context, options."""

LIST_IDENTITY: Final = 0x63
REGISTER_SESSION: Final = 0x65
UNREGISTER_SESSION: Final = 0x66
SEND_RR_DATA: Final = 0x6F
SEND_UNIT_DATA: Final = 0x70

NULL_ADDRESS: Final = 0x0000
CONNECTED_ADDRESS: Final = 0x00A1
CONNECTED_DATA: Final = 0x00B1
UNCONNECTED_DATA: Final = 0x00B2

FORWARD_OPEN: Final = 0x54
LARGE_FORWARD_OPEN: Final = 0x5B
FORWARD_CLOSE: Final = 0x4E
UNCONNECTED_SEND: Final = 0x52

CONNECTION_MANAGER: Final = logical_path(0x06, 1)
MESSAGE_ROUTER: Final = logical_path(0x02, 1)

_TRANSPORT_CLASS3: Final = 0xA3
"""Class 3, application triggered, server: explicit messaging."""
_NCP_BASE: Final = 0x4200
"""Point-to-point, low priority, variable size; the size fills the low bits."""


@dataclasses.dataclass(frozen=True, slots=True)
class Encapsulation:
    """One encapsulation message: header fields and data."""

    command: int
    session: int = 0
    status: int = 0
    context: bytes = b"\x00" * 8
    data: bytes = b""

    def encode(self) -> bytes:
        """Header plus data."""
        return HEADER.pack(self.command, len(self.data), self.session, self.status, self.context, 0) + self.data

    @classmethod
    def decode_header(cls, raw: bytes) -> tuple[Encapsulation, int]:
        """The header's fields (data empty) and the data length that follows it."""
        if len(raw) != HEADER.size:
            raise CipDecodeError(len(raw), f"encapsulation header is {HEADER.size} bytes")
        command, length, session, status, context, _options = HEADER.unpack(raw)
        return cls(command=command, session=session, status=status, context=context), length


def encode_cpf(items: Sequence[tuple[int, bytes]]) -> bytes:
    """Interface handle 0, timeout 0, then the Common Packet Format item list."""
    out = struct.pack("<IHH", 0, 0, len(items))
    for type_id, payload in items:
        out += struct.pack("<HH", type_id, len(payload)) + payload
    return out


def decode_cpf(data: bytes) -> list[tuple[int, bytes]]:
    """The items of a SendRRData / SendUnitData body; ``CipDecodeError`` names where it breaks."""
    if len(data) < 8:
        raise CipDecodeError(len(data), "command data shorter than interface handle, timeout and item count")
    (count,) = struct.unpack_from("<H", data, 6)
    offset, items = 8, []
    for _ in range(count):
        if offset + 4 > len(data):
            raise CipDecodeError(offset, "item header past the end")
        type_id, length = struct.unpack_from("<HH", data, offset)
        offset += 4
        if offset + length > len(data):
            raise CipDecodeError(offset, f"item 0x{type_id:04X} of {length} bytes runs past the end")
        items.append((type_id, data[offset : offset + length]))
        offset += length
    return items


def encode_unconnected_send(request: bytes, route: bytes) -> bytes:
    """Unconnected Send (0x52) data: the embedded request and the route to the controller."""
    pad = b"\x00" if len(request) % 2 else b""
    # 0x0A: 2^10 ms ticks; 0x0E ticks: about 14 s for the far end, beyond our own timeout
    return struct.pack("<BBH", 0x0A, 0x0E, len(request)) + request + pad + bytes((len(route) // 2, 0)) + route


@dataclasses.dataclass(frozen=True, slots=True)
class ForwardOpen:
    """The fields of a Forward Open that both ends care about."""

    o_t_id: int
    t_o_id: int
    serial: int
    vendor: int
    originator_serial: int
    o_t_size: int
    t_o_size: int
    large: bool
    path: bytes
    rpi_us: int = 2_000_000


def encode_forward_open(fo: ForwardOpen) -> bytes:
    """Forward Open (0x54) or Large Forward Open (0x5B) request data."""
    ncp = "I" if fo.large else "H"
    base = (_NCP_BASE << 16) if fo.large else _NCP_BASE
    return (
        struct.pack("<BBIIHHIB3x", 0x0A, 0x0E, fo.o_t_id, fo.t_o_id, fo.serial, fo.vendor, fo.originator_serial, 3)
        + struct.pack(f"<I{ncp}I{ncp}", fo.rpi_us, base | fo.o_t_size, fo.rpi_us, base | fo.t_o_size)
        + bytes((_TRANSPORT_CLASS3, len(fo.path) // 2))
        + fo.path
    )


def decode_forward_open(data: bytes, *, large: bool) -> ForwardOpen:
    """Parse Forward Open request data (servers)."""
    fixed = struct.Struct("<BBIIHHIB3x")
    ncp = "I" if large else "H"
    sizes = struct.Struct(f"<I{ncp}I{ncp}")
    if len(data) < fixed.size + sizes.size + 2:
        raise CipDecodeError(len(data), "Forward Open request too short")
    _, _, o_t, t_o, serial, vendor, orig_serial, _ = fixed.unpack_from(data)
    rpi, o_t_ncp, _, t_o_ncp = sizes.unpack_from(data, fixed.size)
    mask = 0xFFFF if large else 0x01FF
    at = fixed.size + sizes.size + 1
    words = data[at]
    path = data[at + 1 : at + 1 + 2 * words]
    return ForwardOpen(o_t, t_o, serial, vendor, orig_serial, o_t_ncp & mask, t_o_ncp & mask, large, path, rpi)


def encode_forward_close(fo: ForwardOpen) -> bytes:
    """Forward Close (0x4E) request data: the connection triad and its path."""
    return struct.pack("<BBHHIBB", 0x0A, 0x0E, fo.serial, fo.vendor, fo.originator_serial, len(fo.path) // 2, 0) + (
        fo.path
    )
