"""S7 PDUs (classic S7comm, protocol id 0x32): setup communication, multi-variable read, write; pure.

Layouts as the Wireshark s7comm dissector decodes them. A job header is ``32 01 0000 <seq> <param
len> <data len>``; an ack-data header adds an error class and code. Read and write items address
``<area> <db> <bit address>`` (T and C: the element number) with a transport size; the response
carries one return code per item (0xFF success, 0x05 address out of range, 0x0A object does not
exist, ...), which ``ItemResult`` keeps so one bad item marks only its own tags.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence

from bridges.s7.plan import Chunk
from model.bridges.s7_address import S7Area

__all__ = [
    "HEADER_ERRORS",
    "ITEM_ERRORS",
    "ItemResult",
    "S7HeaderError",
    "S7PduError",
    "build_read",
    "build_setup",
    "build_szl",
    "build_write",
    "header_error_text",
    "item_error_text",
    "parse_read",
    "parse_setup",
    "parse_szl",
    "parse_write",
]

_JOB, _ACK, _ACK_DATA = 0x01, 0x02, 0x03
_READ, _WRITE, _SETUP = 0x04, 0x05, 0xF0
_TS_BIT, _TS_BYTE, _TS_COUNTER, _TS_TIMER = 0x01, 0x02, 0x1C, 0x1D
# data-section transport sizes giving their length in bits (BIT, BYTE/WORD/DWORD, INT; rounded up to bytes, as
# the Wireshark dissector reads them); DINT (6), REAL (7) and octet strings (9) give it in bytes
_LENGTH_IN_BITS = frozenset({0x03, 0x04, 0x05})

ITEM_ERRORS: dict[int, str] = {
    0x01: "hardware fault",
    0x03: "accessing the object not allowed",
    0x05: "address out of range",
    0x06: "data type not supported",
    0x07: "data type inconsistent",
    0x0A: "object does not exist",
}
"""Item return codes of a read or write (0xFF is success)."""

HEADER_ERRORS: dict[int, str] = {
    0x8104: "function not available (context not supported)",
    0x8500: "PDU size exceeded or wrong frame",
    0x8301: "not enough resources (connection or job)",
    0x8304: "resource bottleneck",
    0x8404: "the function cannot be performed (fatal error)",
    0xD602: "incorrect password",
    0xD604: "access protected: needs a password",
}
"""Header error class and code (class << 8 | code) of an ack or ack-data."""


class S7PduError(ValueError):
    """A PDU that does not parse; the message names the byte offset."""


class S7HeaderError(Exception):
    """The PLC answered a job with an error in the header: the whole request failed."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(header_error_text(code))


@dataclasses.dataclass(frozen=True, slots=True)
class ItemResult:
    """One item of a read response: its return code and, on success, its data."""

    code: int
    data: bytes

    @property
    def ok(self) -> bool:
        """The PLC returned the data."""
        return self.code == 0xFF


def item_error_text(code: int) -> str:
    """``0x0A object does not exist``."""
    return f"0x{code:02X} {ITEM_ERRORS.get(code, 'unknown return code')}"


def header_error_text(code: int) -> str:
    """``error 0x8104 function not available (context not supported)``."""
    return f"error 0x{code:04X} {HEADER_ERRORS.get(code, 'unknown error class/code')}"


def _header(sequence: int, params: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">BBHHHH", 0x32, _JOB, 0, sequence & 0xFFFF, len(params), len(data)) + params + data


def build_setup(sequence: int, pdu_size: int) -> bytes:
    """Setup communication: one job in flight each way and the PDU size we ask for."""
    return _header(sequence, struct.pack(">BBHHH", _SETUP, 0, 1, 1, pdu_size))


def _item(area: S7Area, db: int, start: int, transport: int, count: int, bit: int = 0) -> bytes:
    address = start if area in (S7Area.TM, S7Area.CT) else start * 8 + bit  # T/C: element number
    return struct.pack(">BBBBHHB", 0x12, 0x0A, 0x10, transport, count, db, area) + address.to_bytes(3, "big")


def _transport(area: S7Area) -> int:
    return {S7Area.TM: _TS_TIMER, S7Area.CT: _TS_COUNTER}.get(area, _TS_BYTE)


def build_read(sequence: int, chunks: Sequence[Chunk]) -> bytes:
    """A read of every chunk in one request (bytes; T and C as elements)."""
    items = b"".join(_item(c.area, c.db, c.start, _transport(c.area), c.units) for c in chunks)
    return _header(sequence, bytes([_READ, len(chunks)]) + items)


def build_write(sequence: int, area: S7Area, db: int, start: int, data: bytes, bit: int | None = None) -> bytes:
    """A write of one item: a bit (``bit`` set, ``data`` one byte 0/1), bytes, or T/C elements."""
    if bit is not None:
        spec, payload = _item(area, db, start, _TS_BIT, 1, bit), struct.pack(">BBH", 0, 0x03, 1) + data[:1]
    elif area in (S7Area.TM, S7Area.CT):
        spec, payload = (
            _item(area, db, start, _transport(area), len(data) // 2),
            struct.pack(">BBH", 0, 0x09, len(data)) + data,
        )
    else:
        spec, payload = _item(area, db, start, _TS_BYTE, len(data)), struct.pack(">BBH", 0, 0x04, len(data) * 8) + data
    return _header(sequence, bytes([_WRITE, 1]) + spec, payload)


def _response(pdu: bytes, function: int) -> tuple[int, bytes, bytes]:
    """Sequence, parameters and data of an ack(-data) to ``function``; header errors raise S7HeaderError."""
    if len(pdu) < 12:
        raise S7PduError(f"response of {len(pdu)} bytes is shorter than the 12-byte header")
    protocol, kind, _, sequence, param_len, data_len, error = struct.unpack(">BBHHHHH", pdu[:12])
    if protocol != 0x32:
        raise S7PduError(f"byte 0: protocol id 0x{protocol:02X}, not 0x32")
    if kind not in (_ACK, _ACK_DATA):
        raise S7PduError(f"byte 1: PDU type 0x{kind:02X} is not an ack")
    if error:
        raise S7HeaderError(error)
    if 12 + param_len + data_len != len(pdu):
        raise S7PduError(f"bytes 6-9: lengths {param_len} + {data_len} do not match the {len(pdu) - 12} bytes after")
    params, data = pdu[12 : 12 + param_len], pdu[12 + param_len :]
    if not params or params[0] != function:
        got = f"0x{params[0]:02X}" if params else "none"
        raise S7PduError(f"byte 12: function {got}, expected 0x{function:02X}")
    return sequence, params, data


def parse_setup(pdu: bytes) -> tuple[int, int]:
    """Sequence and negotiated PDU size."""
    sequence, params, _ = _response(pdu, _SETUP)
    if len(params) < 8:
        raise S7PduError(f"byte 12: setup parameters of {len(params)} bytes, expected 8")
    return sequence, struct.unpack(">H", params[6:8])[0]


def parse_read(pdu: bytes, items: int) -> tuple[int, list[ItemResult]]:
    """Sequence and one result per item, in request order."""
    sequence, params, data = _response(pdu, _READ)
    if len(params) < 2 or params[1] != items:
        raise S7PduError(f"byte 13: {params[1] if len(params) > 1 else 0} items answered, {items} asked")
    results: list[ItemResult] = []
    offset = 0
    for index in range(items):
        at = 12 + len(params) + offset
        if offset + 4 > len(data):
            raise S7PduError(f"byte {at}: item {index} header is truncated")
        code, transport, length = struct.unpack(">BBH", data[offset : offset + 4])
        offset += 4
        if code != 0xFF:
            results.append(ItemResult(code, b""))
            continue
        size = -(-length // 8) if transport in _LENGTH_IN_BITS else length
        if offset + size > len(data):
            raise S7PduError(f"byte {at}: item {index} declares {size} bytes, {len(data) - offset} left")
        results.append(ItemResult(code, bytes(data[offset : offset + size])))
        offset += size + (size % 2 if index < items - 1 else 0)
    return sequence, results


def parse_write(pdu: bytes) -> tuple[int, int]:
    """Sequence and the item's return code."""
    sequence, params, data = _response(pdu, _WRITE)
    if len(params) < 2 or params[1] != 1 or len(data) < 1:
        raise S7PduError(f"byte 13: a write ack with {len(data)} return codes, expected 1")
    return sequence, data[0]


def build_szl(sequence: int, szl_id: int, index: int) -> bytes:
    """A userdata request reading a system status list (SZL) part, e.g. 0x0424 (the CPU's operating mode)."""
    params = bytes([0x00, 0x01, 0x12, 0x04, 0x11, 0x44, 0x01, 0x00])  # request, CPU functions, read SZL
    data = struct.pack(">BBHHH", 0xFF, 0x09, 4, szl_id, index)
    return struct.pack(">BBHHHH", 0x32, 0x07, 0, sequence & 0xFFFF, len(params), len(data)) + params + data


def parse_szl(pdu: bytes) -> tuple[int, bytes | None]:
    """Sequence and the SZL's records (None when the PLC does not serve that list)."""
    if len(pdu) < 10 or pdu[0] != 0x32 or pdu[1] != 0x07:
        raise S7PduError("byte 1: not a userdata response")
    sequence, param_len, data_len = struct.unpack(">HHH", pdu[4:10])
    params, data = pdu[10 : 10 + param_len], pdu[10 + param_len : 10 + param_len + data_len]
    error = struct.unpack(">H", params[10:12])[0] if len(params) >= 12 else 0
    if error or len(data) < 12 or data[0] != 0xFF:
        return sequence, None
    return sequence, bytes(data[12:])
