"""CIP (Common Industrial Protocol) messages, pure: data types, paths, Message Router requests and replies.

Written from the CIP specification (Vol. 1: Message Router, Connection Manager, general status codes)
and Rockwell's Logix 5000 Data Access manual (1756-PM020: Read/Write Tag, Multiple Service Packet,
symbol and template objects). No I/O here: the client (``client.py``) and the demo's server
(``bridges/sim/ethernetip_server.py``) both frame bytes through it.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence
from typing import Final

__all__ = [
    "ATOMIC_TYPES",
    "CIP_STRING",
    "DWORD",
    "GET_ATTRIBUTES_ALL",
    "GET_ATTRIBUTE_LIST",
    "GET_INSTANCE_ATTRIBUTE_LIST",
    "IDENTITY_CLASS",
    "MULTIPLE_SERVICE",
    "PROGRAM_NAME_CLASS",
    "READ_TAG",
    "READ_TAG_FRAGMENTED",
    "SHORT_STRING",
    "STATUS_NAMES",
    "STRING_HANDLE",
    "STRUCT_MARK",
    "SYMBOL_CLASS",
    "TEMPLATE_CLASS",
    "UNCONNECTED_SIZE",
    "WRITE_TAG",
    "AtomicType",
    "CipDecodeError",
    "Reply",
    "decode_multiple",
    "decode_reply",
    "encode_multiple",
    "encode_reply",
    "encode_request",
    "logical_path",
    "port_path",
    "status_text",
    "symbolic_segment",
]

READ_TAG: Final = 0x4C
WRITE_TAG: Final = 0x4D
READ_TAG_FRAGMENTED: Final = 0x52
MULTIPLE_SERVICE: Final = 0x0A
GET_ATTRIBUTES_ALL: Final = 0x01
GET_ATTRIBUTE_LIST: Final = 0x03
GET_INSTANCE_ATTRIBUTE_LIST: Final = 0x55
"""Logix: a page of the Symbol object's instances with the attributes asked for."""
IDENTITY_CLASS: Final = 0x01
PROGRAM_NAME_CLASS: Final = 0x64
SYMBOL_CLASS: Final = 0x6B
"""Logix Symbol object: one instance per tag."""
TEMPLATE_CLASS: Final = 0x6C
"""Logix Template object: one instance per structure type."""
UNCONNECTED_SIZE: Final = 504
"""Bytes of a CIP message without a connection (and of a classic Forward Open)."""
STRUCT_MARK: Final = 0x02A0
"""A Read Tag reply's type word for a structure; the structure handle follows."""
STRING_HANDLE: Final = 0x0FCE
"""Structure handle of the Logix built-in STRING (DINT LEN, SINT DATA[82])."""
CIP_STRING: Final = 0xD0
"""CIP STRING (UINT length + characters), which some non-Logix servers answer for text tags."""
SHORT_STRING: Final = 0xDA
"""CIP SHORT_STRING (USINT length + characters)."""
DWORD: Final = 0xD3
"""32 packed bits: how Logix answers a BOOL array."""


@dataclasses.dataclass(frozen=True, slots=True)
class AtomicType:
    """A Logix elementary type: its CIP type code and how one element packs (little-endian)."""

    name: str
    code: int
    fmt: str

    @property
    def size(self) -> int:
        """Bytes per element."""
        return struct.calcsize("<" + self.fmt)


ATOMIC_TYPES: Final[dict[str, AtomicType]] = {
    t.name: t
    for t in (
        AtomicType("BOOL", 0xC1, "B"),
        AtomicType("SINT", 0xC2, "b"),
        AtomicType("INT", 0xC3, "h"),
        AtomicType("DINT", 0xC4, "i"),
        AtomicType("LINT", 0xC5, "q"),
        AtomicType("USINT", 0xC6, "B"),
        AtomicType("UINT", 0xC7, "H"),
        AtomicType("UDINT", 0xC8, "I"),
        AtomicType("ULINT", 0xC9, "Q"),
        AtomicType("REAL", 0xCA, "f"),
        AtomicType("LREAL", 0xCB, "d"),
    )
}

# CIP Vol. 1, Appendix B: general status codes, worded for someone reading a log.
STATUS_NAMES: Final[dict[int, str]] = {
    0x00: "success",
    0x01: "connection failure",
    0x02: "resource unavailable",
    0x03: "invalid parameter value",
    0x04: "path segment error (tag does not exist or its name is malformed)",
    0x05: "path destination unknown (no such tag, member or object)",
    0x06: "partial transfer (reply too large)",
    0x07: "connection lost",
    0x08: "service not supported",
    0x09: "invalid attribute value",
    0x0A: "attribute list error",
    0x0B: "already in requested state",
    0x0C: "object state conflict (controller mode does not allow it)",
    0x0D: "object already exists",
    0x0E: "attribute not settable",
    0x0F: "privilege violation (external access is read only or none)",
    0x10: "device state conflict (controller mode does not allow it)",
    0x11: "reply data too large",
    0x12: "fragmentation of a primitive value",
    0x13: "not enough data (request too short)",
    0x14: "attribute not supported",
    0x15: "too much data",
    0x16: "object does not exist",
    0x1A: "routing failure, request packet too large",
    0x1B: "routing failure, response packet too large",
    0x1C: "missing attribute list entry data",
    0x1E: "embedded service error",
    0x20: "invalid parameter",
    0x26: "path size invalid (too many or too few path words)",
    0xFF: "general error (see extended status)",
}

# Connection Manager extended status (status 0x01), CIP Vol. 1 Table 3-5.29.
_EXTENDED: Final[dict[int, str]] = {
    0x0100: "connection in use or duplicate Forward Open",
    0x0103: "transport class and trigger combination not supported",
    0x0106: "ownership conflict",
    0x0107: "target connection not found",
    0x0108: "invalid network connection parameter",
    0x0109: "invalid connection size",
    0x0111: "requested RPI not supported",
    0x0113: "out of connections",
    0x0114: "vendor id or product code mismatch",
    0x0115: "device type mismatch",
    0x0116: "revision mismatch",
    0x0203: "connection timed out",
    0x0204: "unconnected request timed out",
    0x0205: "parameter error in unconnected request",
    0x0301: "no buffer memory available",
    0x0302: "network bandwidth not available",
    0x0311: "port not available (route names a port the module does not have)",
    0x0312: "link address not valid (nothing in that slot or at that address)",
    0x0315: "invalid segment in connection path",
    0x2104: "tag does not exist (extended 0x2104)",
    0x2105: "access beyond the end of the tag",
    0x2107: "data type used in the request does not match the tag's",
}


class CipDecodeError(ValueError):
    """Bytes that are not the CIP message they should be; says at which byte offset."""

    def __init__(self, offset: int, reason: str) -> None:
        self.offset = offset
        super().__init__(f"CIP reply undecodable at byte {offset}: {reason}")


def status_text(status: int, extended: Sequence[int] = ()) -> str:
    """``0x05 path destination unknown (...)``; the extended status words appended when there are any."""
    text = f"0x{status:02X} {STATUS_NAMES.get(status, 'vendor-specific status')}"
    for word in extended:
        text += f", extended 0x{word:04X}"
        if word in _EXTENDED:
            text += f" {_EXTENDED[word]}"
    return text


def symbolic_segment(name: str) -> bytes:
    """ANSI extended symbolic segment (0x91): one name of a tag path, padded to an even length."""
    raw = name.encode("ascii")
    if not raw or len(raw) > 255:
        raise ValueError(f"tag name part {name!r} must be 1..255 ASCII characters")
    return bytes((0x91, len(raw))) + raw + (b"\x00" if len(raw) % 2 else b"")


def _logical(kind: int, value: int) -> bytes:
    if value < 0x100:
        return bytes((kind, value))
    if value < 0x10000:
        return bytes((kind | 1, 0)) + struct.pack("<H", value)
    return bytes((kind | 2, 0)) + struct.pack("<I", value)


def element_segment(index: int) -> bytes:
    """Member/element id segment (0x28/0x29/0x2A): an array index."""
    return _logical(0x28, index)


def logical_path(class_id: int, instance: int, attribute: int | None = None) -> bytes:
    """Class / instance (/ attribute) logical segments."""
    path = _logical(0x20, class_id) + _logical(0x24, instance)
    if attribute is not None:
        path += _logical(0x30, attribute)
    return path


def port_path(hops: Sequence[tuple[int, int]]) -> bytes:
    """Port segments of a route: (port, link) pairs, e.g. ``[(1, 2)]`` = backplane, slot 2."""
    out = b""
    for port, link in hops:
        if not 0 < port < 15 or not 0 <= link <= 255:
            raise ValueError(f"route hop {port},{link}: port must be 1..14 and link 0..255")
        out += bytes((port, link))
    return out


def encode_request(service: int, path: bytes, data: bytes = b"") -> bytes:
    """A Message Router request: service, path size in words, path, request data."""
    if len(path) % 2:
        raise ValueError("a CIP path is a whole number of 16-bit words")
    return bytes((service, len(path) // 2)) + path + data


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """A Message Router reply."""

    service: int
    """The request's service (the reply bit cleared)."""
    status: int
    extended: tuple[int, ...]
    data: bytes

    @property
    def ok(self) -> bool:
        """General status 0 (or 0x06, more data follows, which callers handle)."""
        return self.status == 0

    def describe(self) -> str:
        """The status spelled out: ``0x05 path destination unknown (...)``."""
        return status_text(self.status, self.extended)


def decode_reply(raw: bytes) -> Reply:
    """Parse a Message Router reply; ``CipDecodeError`` names the offset of a short or odd one."""
    if len(raw) < 4:
        raise CipDecodeError(len(raw), f"reply of {len(raw)} bytes is shorter than its 4-byte header")
    if not raw[0] & 0x80:
        raise CipDecodeError(0, f"service 0x{raw[0]:02X} is not a reply (bit 7 clear)")
    words = raw[3]
    end = 4 + 2 * words
    if len(raw) < end:
        raise CipDecodeError(4, f"extended status of {words} words runs past the reply's end ({len(raw)} bytes)")
    extended = struct.unpack_from(f"<{words}H", raw, 4)
    return Reply(service=raw[0] & 0x7F, status=raw[2], extended=tuple(extended), data=raw[end:])


def encode_reply(service: int, status: int = 0, data: bytes = b"", extended: Sequence[int] = ()) -> bytes:
    """A Message Router reply (servers): reply service, reserved, status, extended words, data."""
    head = bytes((service | 0x80, 0, status, len(extended)))
    return head + struct.pack(f"<{len(extended)}H", *extended) + data


def encode_multiple(requests: Sequence[bytes]) -> bytes:
    """The data of a Multiple Service Packet: count, offsets from the count, then the requests."""
    offset = 2 + 2 * len(requests)
    offsets = []
    for request in requests:
        offsets.append(offset)
        offset += len(request)
    return struct.pack(f"<H{len(requests)}H", len(requests), *offsets) + b"".join(requests)


def decode_multiple(data: bytes) -> list[bytes]:
    """Split a Multiple Service Packet's data (request or reply) into its embedded messages."""
    if len(data) < 2:
        raise CipDecodeError(0, "multiple service data shorter than its count")
    (count,) = struct.unpack_from("<H", data)
    if len(data) < 2 + 2 * count:
        raise CipDecodeError(len(data), f"{count} offsets run past the data's end")
    offsets = [*struct.unpack_from(f"<{count}H", data, 2), len(data)]
    parts = []
    for index in range(count):
        start, end = offsets[index], offsets[index + 1]
        if not 2 + 2 * count <= start <= end <= len(data):
            raise CipDecodeError(2 + 2 * index, f"offset {start} of message {index} is out of bounds")
        parts.append(data[start:end])
    return parts
