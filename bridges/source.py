"""The Source protocol: what every protocol bridge implements, and the values it produces.

A Source talks to machines (Modbus, OPC UA, JSON over MQTT, ...) and nothing else. The EdgeNode
(``bridges/edge.py``) turns what a Source reports into Sparkplug B: births, data, deaths, seq,
aliases, store-and-forward. Sources never touch MQTT or Sparkplug encoding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Protocol, Self

from model.envelope import Quality
from uns.sparkplug import DataType, MetricValue

__all__ = ["DeviceDown", "Sample", "Samples", "Source", "SourceEvent", "TagSpec"]


@dataclasses.dataclass(frozen=True, slots=True)
class TagSpec:
    """One metric a source provides: declared in the device's DBIRTH."""

    device: str
    """Sparkplug device id the tag belongs to."""
    name: str
    """Sparkplug metric name; ``/`` makes levels (``Production/GoodCount``)."""
    datatype: DataType
    unit: str | None = None
    writable: bool = False
    """A DCMD may write it (holding registers, coils, writable OPC UA variables)."""
    deadband: float = 0.0
    """Report by exception: a numeric change smaller than this (absolute) is not sent."""
    description: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one tag."""

    name: str
    value: MetricValue
    """``None`` when the reading failed (quality ``bad``)."""
    timestamp_ms: int
    quality: Quality = Quality.good


@dataclasses.dataclass(frozen=True, slots=True)
class Samples:
    """Readings of one device, taken together (one poll group, or one subscription notification)."""

    device: str
    samples: Sequence[Sample]


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceDown:
    """The device stopped answering (the EdgeNode sends DDEATH; the next ``Samples`` re-births it)."""

    device: str
    reason: str


SourceEvent = Samples | DeviceDown


class Source(Protocol):
    """A connection to one or more devices of one protocol.

    ``async with source:`` prepares it (validate, open what must be open; a device that is down at
    start is not an error: it is reported as ``DeviceDown`` and retried). ``tags()`` is final once
    entered. ``events()`` runs the polling or subscriptions until cancelled.
    """

    name: str
    """The bridge's name, for logs and errors."""

    async def __aenter__(self) -> Self:
        """Prepare the source."""
        ...

    async def __aexit__(self, *exc_info: object) -> None:
        """Close every connection."""
        ...

    def tags(self) -> Sequence[TagSpec]:
        """Every tag of every device, in birth order."""
        ...

    def events(self) -> AsyncIterator[SourceEvent]:
        """Readings and device failures as they happen, until cancelled."""
        ...

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """Write a value (from a DCMD); raises ``uns.errors.BridgeError`` naming device and address."""
        ...
