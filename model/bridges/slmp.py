"""Config of the SLMP bridge (Mitsubishi MC protocol): PLCs of the Q, L, iQ-R and iQ-F/FX5 series, their tags."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal, Self

from pydantic import Field, model_validator

from model.bridges.common import BridgeBase
from model.bridges.plc import PlcDeviceBase, PlcTagBase

__all__ = [
    "BIT_DEVICES",
    "HEX_DEVICES",
    "WORD_DEVICES",
    "Frame",
    "Series",
    "SlmpBridgeConfig",
    "SlmpDevice",
    "SlmpTag",
    "SlmpType",
    "parse_address",
    "words_of",
]

Series = Literal["Q", "L", "iQ-R", "iQ-F", "FX5"]
"""CPU series: Q and L (and QnU) speak the Q/L device format, iQ-R the 4-byte-address one; FX5 is iQ-F."""
Frame = Literal["3E", "4E"]
SlmpType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32", "float64", "string", "wstring"]

BIT_DEVICES: tuple[str, ...] = ("X", "Y", "M", "L", "B", "SM")
WORD_DEVICES: tuple[str, ...] = ("D", "W", "R", "ZR", "SD")
HEX_DEVICES: frozenset[str] = frozenset({"X", "Y", "B", "W"})
"""Numbered in hexadecimal as GX Works writes them (X1F, W1A0); on iQ-F, X and Y are octal instead."""

_WORDS: dict[str, int] = {"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "float64": 4}
_ADDRESS = re.compile(r"^(SM|SD|ZR|[XYMLBDWR])([0-9A-F]+)(?:\.([0-9A-F]))?$")


def parse_address(address: str, series: Series) -> tuple[str, int, int | None]:
    """``(device, number, bit)`` of an address such as ``D100``, ``X1F``, ``W1A0``, ``D100.F`` (bit 15 of D100).

    Raises:
        ValueError: an unknown device, a digit the device's notation lacks, or a bit on a bit device;
            the message names the address.
    """
    match = _ADDRESS.match(address.strip().upper())
    if match is None:
        known = ", ".join(BIT_DEVICES + WORD_DEVICES)
        raise ValueError(f"address {address!r}: not a device address (devices: {known}; e.g. D100, X1F, D10.3)")
    device, digits, bit = match.groups()
    radix = 8 if series in ("iQ-F", "FX5") and device in ("X", "Y") else 16 if device in HEX_DEVICES else 10
    try:
        number = int(digits, radix)
    except ValueError:
        notation = {8: "octal", 10: "decimal", 16: "hexadecimal"}[radix]
        raise ValueError(f"address {address!r}: {device} is numbered in {notation} on {series}") from None
    if bit is not None and device in BIT_DEVICES:
        raise ValueError(f"address {address!r}: .{bit} picks a bit of a word device; {device} is a bit device")
    return device, number, None if bit is None else int(bit, 16)


def words_of(type_: SlmpType, length: int | None) -> int:
    """Words a value of ``type_`` occupies (``length`` for strings)."""
    return length or 1 if type_ in ("string", "wstring") else _WORDS[type_]


class SlmpTag(PlcTagBase):
    """One tag: a device address, how its words decode, and the metric it becomes."""

    address: str = Field(
        description="Device and number as GX Works writes them: D100, W1A0, R0, ZR10000, SD203 (words); X1F, Y20, "
        "M100, L5, B1F, SM400 (bits); D100.3 is bit 3 of D100 (hex digit, read only). X, Y, B, W are "
        "hexadecimal (ZR, R, D decimal); on iQ-F/FX5, X and Y are octal."
    )
    type: SlmpType = Field(
        default="int16",
        description="bool (bit devices, or a bit of a word), int16/uint16 (1 word), int32/uint32/float32 (2 words, "
        "low word first), float64 (4 words), string (bytes, first character in the low byte of the first word, "
        "as GX Works stores String), wstring (UTF-16, one character per word, String[Unicode]).",
    )
    length: int | None = Field(default=None, ge=1, le=480, description="Words of a string or wstring.")

    @property
    def words(self) -> int:
        """Words it occupies (a bit tag: the one word holding its bit)."""
        return words_of(self.type, self.length)


class SlmpDevice(PlcDeviceBase):
    """One PLC (one route on one connection) = one Sparkplug device."""

    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="PLC or Ethernet module IPv4 address, or a host name that resolves to IPv4 (MELSEC "
        "Ethernet ports are IPv4 only).",
    )
    port: int = Field(default=5000, ge=1, le=65535, description="SLMP port set in the PLC's Ethernet parameters.")
    transport: Literal["tcp", "udp"] = Field(default="tcp", description="TCP or UDP, as opened in the PLC.")
    series: Series = Field(
        default="iQ-R",
        description="CPU series: Q, L (Q/L device format: 3-byte numbers, 1-byte codes), iQ-R (4-byte numbers, "
        "2-byte codes), iQ-F or FX5 (X/Y octal). A wrong series is refused with end code 0xC059.",
    )
    ethernet_module: bool = Field(
        default=False,
        description="Reached through an Ethernet module (QJ71E71-100, LJ71E71-100, RJ71EN71) rather than the "
        "CPU's built-in port: Q/L modules add block reads (0x0406) the built-in ports refuse.",
    )
    frame: Frame | None = Field(
        default=None,
        description="3E or 4E binary frame; null = 4E for iQ-R and Ethernet modules, 3E for built-in Q/L/iQ-F "
        "ports. 4E adds a serial number that pairs each answer with its request.",
    )
    network: int = Field(default=0, ge=0, le=255, description="Route: network number (0 = the connected network).")
    station: int = Field(default=255, ge=0, le=255, description="Route: station number (255 = the connected one).")
    module_io: int = Field(
        default=0x03FF,
        ge=0,
        le=0xFFFF,
        description="Route: request destination module I/O number (0x03FF = own station's CPU; 0x03E0..0x03E3 = "
        "CPU 1..4 of a multiple-CPU system).",
    )
    multidrop: int = Field(default=0, ge=0, le=255, description="Route: multidrop station number.")
    max_gap: int = Field(default=8, ge=0, le=960, description="Read across gaps up to this many unused words.")
    max_read: int = Field(default=480, ge=1, le=960, description="Words one block or batch read may cover.")
    tags: list[SlmpTag] = Field(min_length=1, description="The tags.")

    @property
    def resolved_frame(self) -> Frame:
        """The frame in use: ``frame`` or the series' default."""
        if self.frame is not None:
            return self.frame
        return "4E" if self.series == "iQ-R" or self.ethernet_module else "3E"

    @model_validator(mode="after")
    def _check(self) -> Self:
        try:
            ip_version = ipaddress.ip_address(self.host.strip("[]")).version
        except ValueError:
            ip_version = 4  # a host name: resolved to IPv4 at connect
        if ip_version == 6:
            raise ValueError(f"device {self.id}: host {self.host!r} is IPv6; MELSEC Ethernet ports speak IPv4 only")
        names: set[str] = set()
        for tag in self.tags:
            where = f"device {self.id}: tag {tag.name} ({tag.address})"
            try:
                device, number, bit = parse_address(tag.address, self.series)
            except ValueError as exc:
                raise ValueError(f"device {self.id}: tag {tag.name}: {exc}") from None
            last = number + (0 if device in BIT_DEVICES else tag.words - 1)
            if last > (0xFFFFFFFF if self.series == "iQ-R" else 0xFFFFFF):
                raise ValueError(f"{where}: past the last device number the {self.series} format can carry")
            if tag.name in names:
                raise ValueError(f"{where}: name used twice")
            names.add(tag.name)
            if tag.poll not in self.poll_groups:
                raise ValueError(f"{where}: poll group {tag.poll!r} not in poll_groups")
            if (device in BIT_DEVICES or bit is not None) != (tag.type == "bool"):
                raise ValueError(
                    f"{where}: a bit device or a word's bit (D10.3) is type bool"
                    if tag.type != "bool"
                    else f"{where}: type bool needs a bit device ({', '.join(BIT_DEVICES)}) or a word's bit (D10.3)"
                )
            if tag.type in ("string", "wstring") and tag.length is None:
                raise ValueError(f"{where}: a {tag.type} needs length (words)")
            if tag.words > self.max_read:
                raise ValueError(f"{where}: {tag.words} words exceed max_read {self.max_read}")
            if device == "ZR" and self.series in ("iQ-F", "FX5"):
                raise ValueError(f"{where}: {self.series} has no ZR (file registers are R)")
            if tag.writable and device == "X":
                raise ValueError(f"{where}: X is an input the PLC refreshes from its modules; not writable")
            if tag.writable and bit is not None:
                raise ValueError(
                    f"{where}: a bit of a word device cannot be written without a read-modify-write race; "
                    "use a bit device (M, L, B, Y) for a writable bit"
                )
        return self


class SlmpBridgeConfig(BridgeBase):
    """An SLMP (MC protocol) bridge: one edge node for several Mitsubishi PLCs."""

    kind: Literal["slmp"] = Field(default="slmp", description="Bridge kind.")
    devices: list[SlmpDevice] = Field(min_length=1, description="The PLCs.")
