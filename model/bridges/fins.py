"""Config of the Omron FINS bridge (CS, CJ, NJ, NX over UDP or FINS/TCP): PLCs, FINS routing, tags."""

from __future__ import annotations

import functools
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from model.bridges.common import BridgeBase
from model.bridges.fins_address import AREA_WORDS, FinsAddress, parse_address
from model.bridges.plc import PlcDeviceBase, PlcTagBase

__all__ = ["FinsBridgeConfig", "FinsDevice", "FinsTag", "FinsType", "StringByteOrder"]

FinsType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32", "float64", "string"]
StringByteOrder = Literal["high_first", "low_first"]

_WORDS = {"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "float64": 4}
_READ_ONLY_A = 448  # A0..A447 are read-only auxiliary words: the PLC answers a write with 0x2101


class FinsTag(PlcTagBase):
    """One tag: an Omron address, how its words decode, and the metric it becomes."""

    address: str = Field(
        description="Omron address: D100 (or DM100), W10.05 (a bit), CIO100.00, H5, A448, E0_100 or EM0:100 "
        "(EM bank in hex), EM100 (current EM bank). Multi-word values take the following words."
    )
    type: FinsType = Field(
        default="uint16",
        description="int16/uint16 one word; int32/uint32/float32 two words and float64 four, low word first "
        "(as Omron stores DINT/REAL/LREAL); bool a bit address or a whole word (non-zero = true); string "
        "'length' words.",
    )
    length: int | None = Field(default=None, ge=1, le=999, description="Words of a string (2 characters each).")
    byte_order: StringByteOrder = Field(
        default="high_first",
        description="Strings: high_first = first character in a word's high byte (Omron's string instructions); "
        "low_first = swapped.",
    )

    @field_validator("address")
    @classmethod
    def _parse(cls, value: str) -> str:
        parse_address(value)
        return value

    @functools.cached_property
    def location(self) -> FinsAddress:
        """The parsed address (parsed once: the driver asks for it on every poll)."""
        return parse_address(self.address)

    @property
    def words(self) -> int:
        """Words the value takes."""
        return (self.length or 1) if self.type == "string" else _WORDS[self.type]

    @model_validator(mode="after")
    def _check(self) -> Self:
        where = self.location
        if where.bit is not None and self.type != "bool":
            raise ValueError(f"tag {self.name}: bit address {self.address} needs type bool (got {self.type})")
        if self.type == "string" and self.length is None:
            raise ValueError(f"tag {self.name}: a string needs length (words)")
        if where.word + self.words > AREA_WORDS[where.area]:
            raise ValueError(
                f"tag {self.name}: {self.address} + {self.words} words runs past the {where.area} area's "
                f"last word {AREA_WORDS[where.area] - 1}"
            )
        if self.writable and where.area == "A" and where.word < _READ_ONLY_A:
            raise ValueError(f"tag {self.name}: {self.address} cannot be writable: A0..A447 are read-only")
        return self


class FinsDevice(PlcDeviceBase):
    """One Omron PLC = one Sparkplug device."""

    host: str = Field(description="IP address or host name of the PLC's Ethernet port.")
    port: int = Field(default=9600, ge=1, le=65535, description="FINS port (UDP and TCP: 9600 by default).")
    transport: Literal["udp", "tcp"] = Field(
        default="udp",
        description="udp: FINS/UDP (every CS/CJ/NJ/NX); tcp: FINS/TCP with its node address handshake (one "
        "connection of the unit's limited number).",
    )
    network: int = Field(default=0, ge=0, le=127, description="Destination network (DNA); 0 = the local network.")
    node: int | None = Field(
        default=None,
        ge=0,
        le=254,
        description="Destination node (DA1), the PLC's FINS node address. Null: UDP uses the last byte of the "
        "PLC's IP address (Omron's automatic conversion), TCP the node the handshake reports.",
    )
    unit: int = Field(default=0, ge=0, le=255, description="Destination unit (DA2); 0 = the CPU unit.")
    source_network: int = Field(default=0, ge=0, le=127, description="Our network (SNA).")
    source_node: int = Field(
        default=0,
        ge=0,
        le=254,
        description="Our node (SA1). 0: UDP uses the last byte of our IP address, TCP asks the PLC to assign one.",
    )
    source_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="UDP: our local port; 0 = any. A PLC whose IP address conversion is 'automatic generation "
        "(static)' or a table answers to port 9600 of the sender, not to the port the request came from: set 9600.",
    )
    retries: int = Field(
        default=1, ge=0, le=5, description="UDP: resend an unanswered request this many times (new SID) first."
    )
    max_words: int = Field(
        default=999, ge=1, le=999, description="Words per Memory Area Read (CS/CJ answer up to 999 in one frame)."
    )
    max_items: int = Field(
        default=128,
        ge=0,
        le=167,
        description="Words per Multiple Memory Area Read, which gathers scattered one- and two-word tags into "
        "one request (CS/CJ accept up to 167 items); 0 = read every block with Memory Area Read.",
    )
    max_gap: int = Field(
        default=16, ge=0, le=999, description="Read across unused words up to this many to save a request."
    )
    tags: list[FinsTag] = Field(min_length=1, description="The PLC's tags.")

    @model_validator(mode="after")
    def _check_tags(self) -> Self:
        names: set[str] = set()
        for tag in self.tags:
            if tag.poll not in self.poll_groups:
                raise ValueError(f"tag {tag.name}: poll group {tag.poll!r} not in poll_groups")
            if tag.name in names:
                raise ValueError(f"tag {tag.name}: name used twice")
            names.add(tag.name)
            if tag.words > self.max_words:
                raise ValueError(f"tag {tag.name}: {tag.words} words exceed max_words {self.max_words}")
        return self


class FinsBridgeConfig(BridgeBase):
    """An Omron FINS bridge: one edge node for several PLCs."""

    kind: Literal["fins"] = Field(default="fins", description="Bridge kind.")
    devices: list[FinsDevice] = Field(min_length=1, description="The PLCs.")
