"""The PlcDevice protocol: what a PLC driver (S7, EtherNet/IP, SLMP, FINS) implements for the shared PlcSource."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol

from bridges.source import Sample, TagSpec
from model.bridges.plc import PlcLinkSettings
from uns.sparkplug import MetricValue

__all__ = ["GroupRead", "PlcDevice", "TagProblem"]


@dataclasses.dataclass(frozen=True, slots=True)
class TagProblem:
    """Part of a read that failed while the connection is fine (a PLC error or end code)."""

    address: str
    """As the user wrote it: ``DB1.DBD4``, ``D100``, ``Program:Main.Speed``, ``DM100``."""
    tags: Sequence[str]
    """The metric names it marks bad."""
    reason: str
    """What the PLC said, spelled out: ``0x0A object does not exist``, ``end code 0x1103 address range exceeded``."""


@dataclasses.dataclass(frozen=True, slots=True)
class GroupRead:
    """One poll group's reading: a sample per tag (a failed tag: value None, quality bad) and what failed."""

    samples: Sequence[Sample]
    problems: Sequence[TagProblem] = ()


class PlcDevice(Protocol):
    """One PLC as one Sparkplug device: a driver's connection to it, its tags and poll groups.

    PlcSource never has two calls to one device in flight (connect, read, write and close are
    serialised per device), so a driver needs no locking of its own.
    """

    id: str
    """Sparkplug device id."""
    endpoint: str
    """Where the PLC is, e.g. ``s7 10.0.0.5:102 rack 0 slot 1``: every log line and error names it."""
    settings: PlcLinkSettings
    """Timeouts and backoff."""

    def tags(self) -> Sequence[TagSpec]:
        """Every tag of this device (``TagSpec.device == id``), final once constructed."""
        ...

    def poll_groups(self) -> Mapping[str, float]:
        """Poll group name -> interval in seconds."""
        ...

    async def connect(self) -> None:
        """Open the connection.

        Raises:
            DeviceUnreachable: no answer, TCP refused or reset: retried with backoff and jitter.
            DeviceRefused: the PLC answered and says no (wrong rack/slot or route, PUT/GET disabled,
                password, connection limit, a state we cannot read in); the message says what to check.
        """
        ...

    async def read(self, group: str) -> GroupRead:
        """Read one poll group.

        Raises:
            DeviceUnreachable: anything that means the connection is gone.
        """
        ...

    async def write(self, name: str, value: MetricValue) -> None:
        """Write one tag (from a DCMD).

        Raises:
            BridgeError: unknown tag, not writable, or a value that does not fit (naming device, tag, address).
            ReadError: the PLC refused the write (with the address and end code).
            DeviceUnreachable: the connection is gone.
        """
        ...

    async def close(self) -> None:
        """Close the connection; idempotent, and ``connect()`` works again after it."""
        ...
