"""OMA-TLV (content format 11542, LwM2M 1.1 Core TS 7.4.3): decode to (path, bytes) leaves, encode resources.

Pure: no I/O. A TLV value carries no type; ``bridges.lwm2m.values`` turns its bytes into a value by the
resource's datatype. Every error names the byte offset where the payload stopped making sense.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bridges.lwm2m.ipso import Path

__all__ = ["ContentError", "TlvEntry", "decode_tlv", "encode_tlv"]

_OBJECT_INSTANCE, _RESOURCE_INSTANCE, _MULTIPLE, _RESOURCE = 0, 1, 2, 3


class ContentError(ValueError):
    """A payload the server cannot read; ``where`` is a byte offset (``byte 12``) or a field (``record 2 'v'``)."""

    def __init__(self, fmt: str, where: str, reason: str) -> None:
        self.fmt = fmt
        self.where = where
        self.reason = reason
        super().__init__(f"{fmt} at {where}: {reason}")


@dataclasses.dataclass(frozen=True, slots=True)
class TlvEntry:
    """One resource (or resource instance) value: its full path, its bytes, where the bytes start."""

    path: Path
    value: bytes
    offset: int


def _header(data: bytes, at: int) -> tuple[int, int, int, int]:
    """(kind, identifier, value start, value end) of the TLV at ``at``."""
    if at >= len(data):
        raise ContentError("TLV", f"byte {at}", "the payload ends inside a TLV header")
    first = data[at]
    kind, id_len, len_type = first >> 6, 2 if first & 0x20 else 1, (first >> 3) & 0x03
    pos = at + 1
    end_of_header = pos + id_len + len_type
    if end_of_header > len(data):
        raise ContentError("TLV", f"byte {at}", f"header needs {1 + id_len + len_type} bytes, {len(data) - at} left")
    ident = int.from_bytes(data[pos : pos + id_len], "big")
    pos += id_len
    length = first & 0x07 if len_type == 0 else int.from_bytes(data[pos : pos + len_type], "big")
    start = pos + len_type
    if start + length > len(data):
        raise ContentError(
            "TLV", f"byte {at}", f"value of {length} bytes overruns the payload ({len(data) - start} left)"
        )
    return kind, ident, start, start + length


def _walk(data: bytes, start: int, end: int, parent: Path, base: Path, depth: int, out: list[TlvEntry]) -> None:
    at = start
    while at < end:
        kind, ident, vstart, vend = _header(data, at)
        if vend > end:
            raise ContentError("TLV", f"byte {at}", "value runs past the end of its enclosing TLV")
        if kind == _OBJECT_INSTANCE:
            # some clients wrap a read of /o/i in its instance too
            if not (depth == 0 or (depth == 1 and len(parent) == 2 and ident == parent[1])):
                raise ContentError("TLV", f"byte {at}", f"object instance {ident} where none can be")
            _walk(data, vstart, vend, (base[0], ident), base, 1, out)
        elif kind == _MULTIPLE:
            if depth >= 2 or len(parent) < 2:
                raise ContentError("TLV", f"byte {at}", "a multiple resource where none can be")
            _walk(data, vstart, vend, (*parent[:2], ident), base, 2, out)
        elif kind == _RESOURCE:
            if len(parent) < 2 or depth >= 2:
                raise ContentError("TLV", f"byte {at}", "a resource without its object instance (read /o/i or deeper)")
            out.append(TlvEntry((*parent[:2], ident), data[vstart:vend], vstart))
        else:  # a resource instance: inside a multiple resource, or alone when /o/i/r was read
            if len(parent) < 3:
                raise ContentError("TLV", f"byte {at}", "a resource instance without its resource")
            out.append(TlvEntry((*parent[:3], ident), data[vstart:vend], vstart))
        at = vend


def decode_tlv(data: bytes, base: Path) -> list[TlvEntry]:
    """Every leaf of a TLV payload read from ``base`` (the path that was read), with full paths."""
    if not base:
        raise ContentError("TLV", "byte 0", "a read needs at least an object id")
    out: list[TlvEntry] = []
    _walk(data, 0, len(data), base[:3], base, 0 if len(base) == 1 else 1, out)
    return out


def _one(kind: int, ident: int, value: bytes) -> bytes:
    first = kind << 6
    id_bytes = ident.to_bytes(2 if ident > 0xFF else 1, "big")
    if ident > 0xFF:
        first |= 0x20
    n = len(value)
    if n < 8:
        return bytes([first | n]) + id_bytes + value
    size = 1 if n <= 0xFF else 2 if n <= 0xFFFF else 3
    return bytes([first | size << 3]) + id_bytes + n.to_bytes(size, "big") + value


def encode_tlv(
    resources: Sequence[tuple[int, bytes | Sequence[tuple[int, bytes]]]], instance: int | None = None
) -> bytes:
    """Resources as TLV (``(id, bytes)`` or ``(id, [(instance id, bytes), ...])``), wrapped in an object instance."""
    body = b"".join(
        _one(_RESOURCE, rid, value)
        if isinstance(value, bytes)
        else _one(_MULTIPLE, rid, b"".join(_one(_RESOURCE_INSTANCE, i, v) for i, v in value))
        for rid, value in resources
    )
    return body if instance is None else _one(_OBJECT_INSTANCE, instance, body)
