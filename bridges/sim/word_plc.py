"""What the simulated word-addressed PLCs (FINS, SLMP) share: where a machine's metrics sit, and the tags reading them.

Each metric gets a slot: values in D100 upward, writable setpoints from D200, multi-word values in
as many words as their type takes, flags and commands in bits addressed the PLC's way. A plant
serves its slots and its ``demo_bridge`` reads the same slots, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Literal, TypeVar

from bridges.sim.layout import Metric

__all__ = ["WORD_TYPES", "PlcSlot", "WordType", "plc_slots", "slot_tags"]

_T = TypeVar("_T")

WordType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32", "float64", "string"]
"""The types a simulated PLC program keeps metrics in (both FINS's and SLMP's tag types include them)."""
_STRING_WORDS = 16

WORD_TYPES: Mapping[str, WordType] = MappingProxyType(
    {
        "Boolean": "bool", "Int8": "int16", "Int16": "int16", "UInt8": "uint16", "UInt16": "uint16",
        "Int32": "int32", "Int64": "int32", "UInt32": "uint32", "UInt64": "uint32", "Float": "float32",
        "Double": "float64", "String": "string", "Text": "string", "DateTime": "float64",
    }
)  # fmt: skip
"""Sparkplug datatype -> the type the PLC program keeps it in (64-bit counters as 32-bit DINT/UDINT)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PlcSlot:
    """Where and how one metric sits in the simulated PLC."""

    metric: Metric
    address: str
    type: WordType
    length: int | None = None


def plc_slots(
    metrics: Sequence[Metric],
    *,
    words: Callable[[WordType, int | None], int],
    bit_address: Callable[[int, bool], str],
    first_bit: Mapping[bool, int],
) -> tuple[PlcSlot, ...]:
    """The slot of every metric, in order: words from D100 (writable from D200), bits numbered from ``first_bit``.

    Args:
        metrics: the machine's metrics.
        words: how many words a type (and a string's length) takes.
        bit_address: the address of the n-th read-only (False) or writable (True) bit.
        first_bit: the number of the first read-only and the first writable bit.
    """
    next_word = {False: 100, True: 200}
    next_bit = {False: first_bit[False], True: first_bit[True]}
    slots = []
    for metric in metrics:
        type_ = WORD_TYPES[metric.datatype]
        if type_ == "bool":
            bit = next_bit[metric.writable]
            next_bit[metric.writable] = bit + 1
            slots.append(PlcSlot(metric=metric, address=bit_address(bit, metric.writable), type="bool"))
            continue
        length = _STRING_WORDS if type_ == "string" else None
        word = next_word[metric.writable]
        next_word[metric.writable] = word + words(type_, length)
        slots.append(PlcSlot(metric=metric, address=f"D{word}", type=type_, length=length))
    return tuple(slots)


def slot_tags(slots: Sequence[PlcSlot], tag: Callable[..., _T]) -> list[_T]:
    """Each slot's bridge tag, built by ``tag`` (``FinsTag``, ``SlmpTag``) with the metric's unit, poll and deadband."""
    return [
        tag(
            name=slot.metric.name,
            address=slot.address,
            type=slot.type,
            length=slot.length,
            unit=slot.metric.unit,
            poll=slot.metric.poll,
            writable=slot.metric.writable,
            deadband=slot.metric.deadband,
        )
        for slot in slots
    ]
