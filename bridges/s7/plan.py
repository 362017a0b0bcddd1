"""The S7 request planner: tags into merged ranges, ranges into multi-variable reads that fit the PDU.

Pure. Sizes follow the S7 protocol's READ VAR job and ack-data (as the Wireshark s7comm dissector
decodes them): a request is a 10-byte header, 2 bytes of function and item count and 12 bytes per item;
a response is a 12-byte header, the same 2 bytes and per item 4 bytes of return code, transport size
and length, the data, and a fill byte after an odd-length item that is not the last. Neither may
exceed the negotiated PDU size, and a request carries at most ``max_items`` items (the CPU's limit:
20 on S7-300/400/1200/1500; the C Snap7 server silently answers only the first 20).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from model.bridges.s7_address import S7Address, S7Area

__all__ = [
    "REQUEST_HEADER",
    "REQUEST_ITEM",
    "RESPONSE_HEADER",
    "RESPONSE_ITEM",
    "Chunk",
    "PlannedTag",
    "Range",
    "ReadPlan",
    "Request",
    "max_item_bytes",
    "plan_reads",
    "request_bytes",
    "response_bytes",
]

REQUEST_HEADER = 10 + 2
"""S7 job header and the parameter's function code and item count."""
REQUEST_ITEM = 12
"""One item's address specification (0x12, length, syntax id, transport size, count, DB, area, address)."""
RESPONSE_HEADER = 12 + 2
"""S7 ack-data header (with error class and code) and the parameter's function code and item count."""
RESPONSE_ITEM = 4
"""One item's return code, transport size and length before its data."""


@dataclasses.dataclass(frozen=True, slots=True)
class PlannedTag:
    """One tag to read: its metric name and address."""

    name: str
    address: S7Address


@dataclasses.dataclass(frozen=True, slots=True)
class Range:
    """Adjacent tags of one area and DB read as one span of units (bytes; T/C: elements of 2 bytes)."""

    area: S7Area
    db: int
    start: int
    units: int
    tags: tuple[PlannedTag, ...]

    @property
    def unit_bytes(self) -> int:
        """Bytes per addressing unit."""
        return 2 if self.area in (S7Area.TM, S7Area.CT) else 1

    @property
    def size(self) -> int:
        """Bytes of the span."""
        return self.units * self.unit_bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    """One item of a request: ``units`` units of range ``range_index`` from ``offset`` (units) into it."""

    range_index: int
    offset: int
    units: int
    area: S7Area
    db: int
    start: int
    """First unit in the PLC: the range's start plus ``offset``."""

    @property
    def size(self) -> int:
        """Bytes it carries."""
        return self.units * (2 if self.area in (S7Area.TM, S7Area.CT) else 1)


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """One multi-variable read: its items, in order."""

    chunks: tuple[Chunk, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ReadPlan:
    """Every range of a poll group and the requests that read them."""

    ranges: tuple[Range, ...]
    requests: tuple[Request, ...]


def max_item_bytes(pdu_size: int) -> int:
    """The most data one item can carry: a response with that single item fills the PDU."""
    return pdu_size - RESPONSE_HEADER - RESPONSE_ITEM


def request_bytes(items: int) -> int:
    """Size of a read request with ``items`` items."""
    return REQUEST_HEADER + REQUEST_ITEM * items


def response_bytes(sizes: Sequence[int]) -> int:
    """Size of the response to items carrying ``sizes`` bytes each (fill bytes included)."""
    total = RESPONSE_HEADER
    for index, size in enumerate(sizes):
        total += RESPONSE_ITEM + size + (size % 2 if index < len(sizes) - 1 else 0)
    return total


def plan_reads(
    tags: Sequence[PlannedTag],
    *,
    pdu_size: int,
    max_items: int = 20,
    max_gap: int = 16,
    isolated: Collection[str] = (),
) -> ReadPlan:
    """Merge tags into ranges (gaps up to ``max_gap`` bytes) and pack them into requests.

    A range never grows past what one item carries; a single tag bigger than that (a long STRING on a
    240-byte PDU) is read in several items and put back together. Tags named in ``isolated`` get a range
    of their own (after one of them failed in a merged range, so it cannot hide its neighbours).
    """
    if pdu_size < RESPONSE_HEADER + RESPONSE_ITEM + 2 or request_bytes(1) > pdu_size:
        raise ValueError(f"PDU size {pdu_size} is too small for an S7 read")
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1 (got {max_items})")
    most = max_item_bytes(pdu_size)
    ranges = _merge(tags, max_gap=max_gap, most=most, isolated=isolated)
    return ReadPlan(ranges=tuple(ranges), requests=tuple(_pack(ranges, pdu_size=pdu_size, max_items=max_items)))


def _merge(tags: Sequence[PlannedTag], *, max_gap: int, most: int, isolated: Collection[str]) -> list[Range]:
    ordered = sorted(tags, key=lambda t: (t.address.area, t.address.db, t.address.start, t.name))
    ranges: list[Range] = []
    for tag in ordered:
        address = tag.address
        end = address.start + address.units
        last = ranges[-1] if ranges else None
        if (
            last is not None
            and tag.name not in isolated
            and not any(t.name in isolated for t in last.tags)
            and (last.area, last.db) == (address.area, address.db)
            and address.start - (last.start + last.units) <= max_gap // last.unit_bytes
            and max(end, last.start + last.units) - last.start <= max(most // last.unit_bytes, last.units)
        ):
            units = max(end, last.start + last.units) - last.start
            ranges[-1] = dataclasses.replace(last, units=units, tags=(*last.tags, tag))
        else:
            ranges.append(Range(address.area, address.db, address.start, address.units, (tag,)))
    return ranges


def _pack(ranges: Sequence[Range], *, pdu_size: int, max_items: int) -> list[Request]:
    most = max_item_bytes(pdu_size)
    chunks: list[Chunk] = []
    for index, span in enumerate(ranges):
        per_item = max(1, most // span.unit_bytes)
        for offset in range(0, span.units, per_item):
            units = min(per_item, span.units - offset)
            chunks.append(Chunk(index, offset, units, span.area, span.db, span.start + offset))
    requests: list[Request] = []
    current: list[Chunk] = []
    for chunk in chunks:
        sizes = [c.size for c in current] + [chunk.size]
        if current and (
            len(sizes) > max_items or request_bytes(len(sizes)) > pdu_size or response_bytes(sizes) > pdu_size
        ):
            requests.append(Request(tuple(current)))
            current = []
        current.append(chunk)
    if current:
        requests.append(Request(tuple(current)))
    return requests
