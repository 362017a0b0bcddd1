"""Pure read planning: coalesce the tags of one table and poll group into as few Modbus reads as allowed.

Two tags share a read when they are in the same table and poll group, the gap between them is at
most ``max_gap`` registers, and the whole read stays within ``max_read`` registers. Coils and
discrete inputs are bits: both limits count 16 bits per register, and a read never exceeds the
protocol's 2000 bits. A tag larger than ``max_read`` still gets a read of its own (the config model
refuses such tags; this only keeps the planner total).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from model.bridges.modbus import ModbusDevice, Table

__all__ = ["TABLES", "ReadRequest", "Span", "Table", "plan_device", "plan_reads", "split"]

TABLES: tuple[Table, ...] = ("coil", "discrete", "holding", "input")
"""Tables in the order their reads are issued."""

_MAX_BITS = 2000  # Modbus application protocol v1.1b3: read coils / discrete inputs, quantity ≤ 2000
_MAX_REGISTERS = 125  # ... read holding / input registers, quantity ≤ 125


@dataclasses.dataclass(frozen=True, slots=True)
class Span:
    """Where one tag lives: its table, first address and size (registers, or bits for bit tables)."""

    name: str
    table: Table
    address: int
    size: int = 1

    @property
    def end(self) -> int:
        """One past the last address."""
        return self.address + self.size


@dataclasses.dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus read: ``count`` registers (or bits) of ``table`` from ``address``, covering ``spans``."""

    table: Table
    address: int
    count: int
    spans: tuple[Span, ...]

    @property
    def label(self) -> str:
        """``holding 100..109``: the table and the address range, for logs and errors."""
        return f"{self.table} {self.address}..{self.address + self.count - 1}"

    def slices(self) -> Iterable[tuple[Span, int, int]]:
        """Each span with its start and end index in the read's values."""
        for span in self.spans:
            start = span.address - self.address
            yield span, start, start + span.size


def _limits(table: Table, max_gap: int, max_read: int) -> tuple[int, int]:
    if table in ("coil", "discrete"):
        return max_gap * 16, min(max_read * 16, _MAX_BITS)
    return max_gap, min(max_read, _MAX_REGISTERS)


def plan_reads(spans: Iterable[Span], *, max_gap: int, max_read: int) -> list[ReadRequest]:
    """Coalesce spans (of one poll group) into reads, table by table in ``TABLES`` order, by address.

    Args:
        spans: the tags to read; they must not overlap within a table.
        max_gap: the most unused registers a read may span between two tags.
        max_read: the most registers one read may cover.
    """
    by_table: dict[Table, list[Span]] = {}
    for span in spans:
        by_table.setdefault(span.table, []).append(span)
    requests: list[ReadRequest] = []
    for table in TABLES:
        gap, limit = _limits(table, max_gap, max_read)
        current: list[Span] = []
        for span in sorted(by_table.get(table, ()), key=lambda s: s.address):
            if current and (span.address - current[-1].end > gap or span.end - current[0].address > limit):
                requests.append(_request(table, current))
                current = []
            current.append(span)
        if current:
            requests.append(_request(table, current))
    return requests


def _request(table: Table, spans: Sequence[Span]) -> ReadRequest:
    start = spans[0].address
    return ReadRequest(table=table, address=start, count=max(s.end for s in spans) - start, spans=tuple(spans))


def split(request: ReadRequest) -> list[ReadRequest]:
    """One read per span: the fallback when a coalesced read hits an address the device refuses."""
    return [ReadRequest(table=request.table, address=s.address, count=s.size, spans=(s,)) for s in request.spans]


def plan_device(device: ModbusDevice) -> dict[str, list[ReadRequest]]:
    """The reads of each poll group of a device (groups without tags are left out), in config order."""
    plans: dict[str, list[ReadRequest]] = {}
    for group in device.poll_groups:
        spans = [
            Span(name=r.name, table=r.table, address=r.address, size=r.size)
            for r in device.registers
            if r.poll == group
        ]
        if spans:
            plans[group] = plan_reads(spans, max_gap=device.max_gap, max_read=device.max_read)
    return plans
