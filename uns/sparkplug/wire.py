"""Find the byte offset where a Sparkplug B payload stops being valid protobuf.

protobuf's parser only says "wire format was corrupt". After it refuses a payload,
:func:`find_wire_error` walks the same bytes by the wire-format rules that upb (protobuf's
Python backend) enforces, recursing into every message-typed field of the Sparkplug schema,
and reports the first place they break:

- a tag that is truncated, longer than 5 bytes, wider than 32 bits, names field 0,
  or uses wire type 6 or 7;
- a varint that is truncated or longer than 10 bytes;
- a fixed32/fixed64 value or a length-delimited field that runs past the end of its
  enclosing message (the offset is then that of the value or of the length);
- an end-group tag with no matching start, or a group left open (offset of its start tag);
- messages nested deeper than protobuf's limit of 100 (offset of the tag that goes deeper).
"""

from __future__ import annotations

import dataclasses

__all__ = ["MAX_DEPTH", "find_wire_error"]

MAX_DEPTH = 100
"""upb's default recursion limit: messages (and groups) nested deeper fail to parse."""


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class _Schema:
    """Which fields of one message type hold sub-messages (walked) or packed varints (checked)."""

    name: str
    children: dict[int, _Schema] = dataclasses.field(default_factory=dict)
    packed_varints: frozenset[int] = frozenset()


def _build_schema() -> _Schema:
    extension = _Schema("extension message")  # every *ValueExtension: only unknown fields
    metadata = _Schema("MetaData")
    property_set = _Schema("PropertySet")
    property_value = _Schema("PropertyValue")
    property_set_list = _Schema("PropertySetList", {1: property_set})
    property_set.children[2] = property_value
    property_value.children.update({9: property_set, 10: property_set_list, 11: extension})
    dataset_value = _Schema("DataSet.DataSetValue", {7: extension})
    row = _Schema("DataSet.Row", {1: dataset_value})
    dataset = _Schema("DataSet", {4: row}, packed_varints=frozenset({3}))
    parameter = _Schema("Template.Parameter", {9: extension})
    metric = _Schema("Metric")
    template = _Schema("Template", {2: metric, 3: parameter})
    metric.children.update({8: metadata, 9: property_set, 17: dataset, 18: template, 19: extension})
    return _Schema("Payload", {2: metric})


_PAYLOAD = _build_schema()
_UNKNOWN_GROUP = _Schema("group")


class _WireError(Exception):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(offset, reason)
        self.offset = offset
        self.reason = reason


def find_wire_error(data: bytes) -> tuple[int, str] | None:
    """The first ``(byte offset, reason)`` where ``data`` breaks the Payload wire format, or None if it does not."""
    try:
        _walk(data, 0, len(data), _PAYLOAD, 0, None, 0)
    except _WireError as exc:
        return exc.offset, exc.reason
    return None


def _walk(data: bytes, pos: int, end: int, schema: _Schema, depth: int, group: int | None, group_at: int) -> int:
    """Walk one message (or group) in ``data[pos:end]``; returns where it ended."""
    while pos < end:
        tag_at = pos
        tag, pos = _varint(data, pos, end, f"tag in {schema.name}", 5)
        if tag > 0xFFFF_FFFF:
            raise _WireError(tag_at, f"tag in {schema.name} does not fit in 32 bits")
        field, wire_type = tag >> 3, tag & 7
        if field == 0:
            raise _WireError(tag_at, f"tag in {schema.name} names field number 0")
        if wire_type == 0:
            _, pos = _varint(data, pos, end, f"varint of field {field} in {schema.name}", 10)
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            if end - pos < size:
                raise _WireError(
                    pos, f"fixed{size * 8} of field {field} in {schema.name} needs {size} bytes, {end - pos} left"
                )
            pos += size
        elif wire_type == 2:
            length_at = pos
            length, pos = _varint(data, pos, end, f"length of field {field} in {schema.name}", 10)
            if length > end - pos:
                raise _WireError(
                    length_at,
                    f"length {length} of field {field} in {schema.name} runs past its end ({end - pos} bytes left)",
                )
            child = schema.children.get(field)
            if child is not None:
                if depth >= MAX_DEPTH:
                    raise _WireError(tag_at, f"messages nested deeper than {MAX_DEPTH} levels")
                _walk(data, pos, pos + length, child, depth + 1, None, 0)
            elif field in schema.packed_varints:
                inner = pos
                while inner < pos + length:
                    _, inner = _varint(
                        data, inner, pos + length, f"packed varint of field {field} in {schema.name}", 10
                    )
            pos += length
        elif wire_type == 3:
            # upb keeps a group of any field number as an unknown field, but still checks it.
            if depth >= MAX_DEPTH:
                raise _WireError(tag_at, f"groups nested deeper than {MAX_DEPTH} levels")
            pos = _walk(data, pos, end, _UNKNOWN_GROUP, depth + 1, field, tag_at)
        elif wire_type == 4:
            if group is None:
                raise _WireError(tag_at, f"end-group tag for field {field} in {schema.name} with no start-group")
            if field != group:
                raise _WireError(tag_at, f"end-group tag for field {field} closes the group of field {group}")
            return pos
        else:
            raise _WireError(tag_at, f"tag in {schema.name} has invalid wire type {wire_type}")
    if group is not None:
        raise _WireError(group_at, f"group of field {group} is never closed")
    return pos


def _varint(data: bytes, pos: int, end: int, what: str, max_bytes: int) -> tuple[int, int]:
    """Read a varint at ``pos``; returns ``(value, position after it)``."""
    start = pos
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise _WireError(start, f"{what} is truncated")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        if pos - start >= max_bytes:
            raise _WireError(start, f"{what} is longer than {max_bytes} bytes")
        shift += 7
