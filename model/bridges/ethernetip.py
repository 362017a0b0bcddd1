"""Config of the EtherNet/IP bridge (ControlLogix, CompactLogix, Micro800): tag addresses, devices, routes."""

from __future__ import annotations

import dataclasses
import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from model.bridges.common import BridgeBase
from model.bridges.plc import PlcDeviceBase, PlcTagBase

__all__ = [
    "LOGIX_TYPES",
    "EthernetIpBridgeConfig",
    "EthernetIpDevice",
    "EthernetIpTag",
    "LogixType",
    "TagAddress",
    "TagPart",
]

LogixType = Literal[
    "BOOL", "SINT", "INT", "DINT", "LINT", "USINT", "UINT", "UDINT", "ULINT", "REAL", "LREAL", "STRING"
]  # fmt: skip
"""Logix data types a tag may have (STRING is the Logix STRING structure, 82 characters)."""
LOGIX_TYPES: tuple[str, ...] = LogixType.__args__  # type: ignore[attr-defined]

_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,39}"
_PART = re.compile(rf"({_NAME})(?:\[(\d+(?:,\d+){{0,2}})\])?$")
_COUNT = re.compile(r"^(.*)\{(\d+)\}$")
_PROGRAM = re.compile(rf"^Program:({_NAME})\.(.+)$")


@dataclasses.dataclass(frozen=True, slots=True)
class TagPart:
    """One name of a tag path and its array indices: ``Motors[2]`` -> ``("Motors", (2,))``."""

    name: str
    indices: tuple[int, ...] = ()

    def __str__(self) -> str:
        return self.name + (f"[{','.join(map(str, self.indices))}]" if self.indices else "")


@dataclasses.dataclass(frozen=True, slots=True)
class TagAddress:
    """A Logix tag reference, parsed once: ``Program:Main.Line[1].Motor.Speed``, ``Temps[0]{10}``, ``Flags.3``.

    ``program`` scopes it to a program; ``parts`` are the tag and its member names with indices;
    ``bit`` is a trailing ``.N`` (bit N of an integer); ``count`` is ``{N}`` (N consecutive array
    elements read as one array metric).
    """

    parts: tuple[TagPart, ...]
    program: str | None = None
    bit: int | None = None
    count: int | None = None

    @classmethod
    def from_str(cls, text: str) -> TagAddress:
        """Parse an address; ``ValueError`` says what is wrong and where."""
        rest, count = text.strip(), None
        if match := _COUNT.match(rest):
            rest, count = match.group(1), int(match.group(2))
            if not 1 <= count <= 10_000:
                raise ValueError(f"{text!r}: element count {{{count}}} must be 1..10000")
        program = None
        if rest.startswith("Program:"):
            if not (match := _PROGRAM.match(rest)):
                raise ValueError(f"{text!r}: a program-scoped tag reads Program:<program>.<tag>")
            program, rest = match.group(1), match.group(2)
        pieces = rest.split(".")
        bit = None
        if len(pieces) > 1 and pieces[-1].isdigit():
            bit = int(pieces.pop())
            if bit > 63:
                raise ValueError(f"{text!r}: bit {bit} is beyond 63")
        parts = []
        for position, piece in enumerate(pieces):
            match = _PART.match(piece)
            if not match:
                raise ValueError(
                    f"{text!r}: part {position + 1} ({piece!r}) is not a Logix name (letter or _, then letters, "
                    "digits, _; at most 40) with optional [i] / [i,j] / [i,j,k]"
                )
            indices = tuple(int(i) for i in match.group(2).split(",")) if match.group(2) else ()
            parts.append(TagPart(match.group(1), indices))
        if bit is not None and count is not None:
            raise ValueError(f"{text!r}: a bit ({bit}) cannot have an element count")
        return cls(parts=tuple(parts), program=program, bit=bit, count=count)

    @property
    def path_names(self) -> tuple[TagPart, ...]:
        """The symbolic parts as the PLC resolves them: ``Program:Main`` first when program-scoped."""
        scope = (TagPart(f"Program:{self.program}"),) if self.program else ()
        return scope + self.parts

    @property
    def root(self) -> str:
        """The tag's own (outermost) name with its scope: ``Program:Main.Line``; what the tag list holds."""
        return (f"Program:{self.program}." if self.program else "") + self.parts[0].name

    def __str__(self) -> str:
        text = ".".join(str(part) for part in self.path_names)
        if self.bit is not None:
            text += f".{self.bit}"
        if self.count is not None:
            text += f"{{{self.count}}}"
        return text


class EthernetIpTag(PlcTagBase):
    """One tag: its Logix address and type, and the metric it becomes."""

    address: str = Field(
        description="Logix tag reference: 'Speed', 'Temps[3]', 'Temps[0]{10}' (10 elements as one array metric), "
        "'Motor.Amps' (UDT member), 'Program:Main.Count' (program scope), 'Flags.3' (bit 3 of an integer)."
    )
    type: LogixType = Field(
        description="Logix data type of the tag (of each element for arrays); 'uns-enip browse' prints it. "
        "A PLC answering another type marks the tag bad naming both."
    )

    @field_validator("address")
    @classmethod
    def _parse(cls, value: str) -> str:
        return str(TagAddress.from_str(value))

    @property
    def parsed(self) -> TagAddress:
        """The address, parsed."""
        return TagAddress.from_str(self.address)

    @model_validator(mode="after")
    def _check(self) -> Self:
        parsed = self.parsed
        if parsed.bit is not None and self.type != "BOOL":
            raise ValueError(f"tag {self.name}: a bit address ({self.address}) is type BOOL")
        if parsed.bit is not None and self.writable:
            raise ValueError(f"tag {self.name}: a bit of an integer ({self.address}) is read only; write a BOOL tag")
        if parsed.count is not None and self.type == "STRING":
            raise ValueError(f"tag {self.name}: STRING arrays are not supported; one tag per element")
        if parsed.count is not None and self.writable:
            raise ValueError(f"tag {self.name}: an array of {parsed.count} elements is read only")
        return self


class EthernetIpDevice(PlcDeviceBase):
    """One Logix controller (or Micro800) = one Sparkplug device."""

    host: str = Field(description="IP address or host name of the controller or of the EtherNet/IP module.")
    port: int = Field(default=44818, ge=1, le=65535, description="EtherNet/IP TCP port.")
    family: Literal["logix", "micro800"] = Field(
        default="logix",
        description="logix = ControlLogix/CompactLogix (requests routed through 'route'); micro800 = "
        "Micro820/850/870 (no backplane: no route, no Multiple Service Packet batching).",
    )
    route: list[tuple[int, int]] | None = Field(
        default=None,
        description="CIP route from the module at 'host' to the controller as [port, link] hops: [[1, 0]] = "
        "backplane (port 1), slot 0. Null = [[1, 0]] for logix (CompactLogix and a ControlLogix CPU in slot 0; "
        "give [[1, N]] for a CPU in slot N), none for micro800.",
    )
    connected: bool = Field(
        default=True,
        description="Use connected messaging (Forward Open; Large Forward Open first): fewer round trips on a busy "
        "controller. If the controller refuses a connection for lack of support, unconnected messaging is used.",
    )
    connection_size: int = Field(
        default=4002,
        ge=500,
        le=4002,
        description="Bytes per message asked for in Large Forward Open (Logix v20+: 4002); falls back to 504 "
        "with a classic Forward Open. Multiple Service Packet batches are sized to what the controller grants.",
    )
    tag_cache: bool = Field(
        default=True,
        description="Upload the controller's tag and UDT list once, keep it under the bridge's data directory, and "
        "refresh it when the program changes (a tag added, removed, retyped, or a UDT redefined). It checks "
        "every configured tag's type at connect.",
    )
    tags: list[EthernetIpTag] = Field(min_length=1, description="The tags to read.")

    @property
    def hops(self) -> list[tuple[int, int]]:
        """The route in effect."""
        if self.route is not None:
            return list(self.route)
        return [] if self.family == "micro800" else [(1, 0)]

    @model_validator(mode="after")
    def _check(self) -> Self:
        names: set[str] = set()
        for tag in self.tags:
            if tag.poll not in self.poll_groups:
                raise ValueError(f"tag {tag.name}: poll group {tag.poll!r} not in poll_groups of device {self.id}")
            if tag.name in names:
                raise ValueError(f"tag {tag.name}: name used twice in device {self.id}")
            names.add(tag.name)
        for port, link in self.hops:
            if not 1 <= port <= 14 or not 0 <= link <= 255:
                raise ValueError(f"device {self.id}: route hop [{port}, {link}]: port 1..14, link 0..255")
        return self


class EthernetIpBridgeConfig(BridgeBase):
    """An EtherNet/IP bridge: one edge node for several Logix controllers."""

    kind: Literal["ethernetip"] = Field(default="ethernetip", description="Bridge kind.")
    devices: list[EthernetIpDevice] = Field(min_length=1, description="The controllers.")
