"""Omron memory addresses as Omron writes them (``D100``, ``W10.05``, ``E2_100``), parsed once into FINS area codes.

Areas of the CS/CJ/NJ/NX memory map that FINS reaches: CIO, W (work), H (holding), A (auxiliary),
D (data memory) and EM (extended data memory: banks ``0``..``18`` in hex as Omron numbers them, or the
current bank). Each has a word and a bit area code (W342 "Memory Area Designations"); a bit address
uses the bit code so that a write changes that one bit.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

__all__ = [
    "AREA_WORDS",
    "EM_BANKS",
    "Area",
    "FinsAddress",
    "FinsAddressError",
    "parse_address",
]

Area = Literal["CIO", "W", "H", "A", "D", "EM"]

AREA_WORDS: Mapping[Area, int] = MappingProxyType({"CIO": 6144, "W": 512, "H": 1536, "A": 960, "D": 32768, "EM": 32768})
"""Words in each area on a CS1/CJ2 CPU (H512..H1535 hold function-block instances; EM: per bank)."""

EM_BANKS = 0x19
"""EM banks 0..18 hex (CJ2H has up to 25; CS1 up to 13: a missing bank answers end code 0x1101)."""

_WORD_CODE: Mapping[str, int] = MappingProxyType({"CIO": 0xB0, "W": 0xB1, "H": 0xB2, "A": 0xB3, "D": 0x82})
_BIT_CODE: Mapping[str, int] = MappingProxyType({"CIO": 0x30, "W": 0x31, "H": 0x32, "A": 0x33, "D": 0x02})
_EM_CURRENT_WORD, _EM_CURRENT_BIT = 0x98, 0x0A

# the prefixes Omron's tools accept for each area (CX-Programmer, Sysmac Studio's FINS notation)
_PREFIXES: Mapping[str, Area] = MappingProxyType(
    {"CIO": "CIO", "": "CIO", "W": "W", "WR": "W", "H": "H", "HR": "H", "A": "A", "AR": "A", "D": "D", "DM": "D"}
)
_PLAIN = re.compile(r"(?P<area>CIO|WR|W|HR|H|AR|A|DM|D|)(?P<word>\d+)(?:\.(?P<bit>\d+))?")
_EM_BANK = re.compile(r"(?:E(?P<e>[0-9A-F]{1,2})_|EM(?P<em>[0-9A-F]{1,2}):)(?P<word>\d+)(?:\.(?P<bit>\d+))?")
_EM_CURRENT = re.compile(r"EM(?P<word>\d+)(?:\.(?P<bit>\d+))?")


class FinsAddressError(ValueError):
    """An address that is not an Omron memory address; the message names the field and the address."""

    def __init__(self, field: str, text: str, reason: str) -> None:
        self.field = field
        self.text = text
        self.reason = reason
        super().__init__(f"{field}: {text!r}: {reason}")


@dataclasses.dataclass(frozen=True, slots=True)
class FinsAddress:
    """One word (``bit is None``) or one bit of a memory area; EM ``bank is None`` = the current bank."""

    area: Area
    word: int
    bit: int | None = None
    bank: int | None = None

    @property
    def word_code(self) -> int:
        """FINS memory area code for word access."""
        if self.area != "EM":
            return _WORD_CODE[self.area]
        if self.bank is None:
            return _EM_CURRENT_WORD
        return 0xA0 + self.bank if self.bank < 0x10 else 0x60 + self.bank - 0x10

    @property
    def bit_code(self) -> int:
        """FINS memory area code for bit access."""
        if self.area != "EM":
            return _BIT_CODE[self.area]
        if self.bank is None:
            return _EM_CURRENT_BIT
        return 0x20 + self.bank if self.bank < 0x10 else 0xE0 + self.bank - 0x10

    @property
    def space(self) -> tuple[str, int | None]:
        """Which word space it lives in: the area and, for EM, the bank (addresses in one space may share a read)."""
        return (self.area, self.bank)

    def shifted(self, words: int) -> FinsAddress:
        """The word ``words`` further on in the same area (a bit address becomes a word address)."""
        return FinsAddress(self.area, self.word + words, None, self.bank)

    def wire(self, *, bit_access: bool = False) -> bytes:
        """The 4 bytes of a FINS memory address: area code, word (big-endian), bit (0 for words)."""
        code = self.bit_code if bit_access else self.word_code
        return bytes((code, self.word >> 8, self.word & 0xFF, (self.bit or 0) if bit_access else 0))

    def __str__(self) -> str:
        bit = "" if self.bit is None else f".{self.bit:02d}"
        if self.area == "EM":
            return f"EM{self.word}{bit}" if self.bank is None else f"E{self.bank:X}_{self.word}{bit}"
        return f"{self.area}{self.word}{bit}"


def parse_address(text: str, *, field: str = "address") -> FinsAddress:
    """Parse ``D100``, ``DM100``, ``W10.05``, ``CIO100.00``, ``H5``, ``A100``, ``E0_100``, ``EM0:100`` or ``EM100``.

    Raises:
        FinsAddressError: naming ``field`` and the address: unknown area, word past the area's end,
            bit outside 0..15, or an EM bank above 18 (hex).
    """
    spelled = text.strip().upper()
    area: Area
    bank: int | None = None
    if plain := _PLAIN.fullmatch(spelled):
        area, word_text, bit_text = _PREFIXES[plain["area"]], plain["word"], plain["bit"]
    elif banked := _EM_BANK.fullmatch(spelled):
        area, word_text, bit_text = "EM", banked["word"], banked["bit"]
        bank = int(banked["e"] or banked["em"], 16)
        if bank >= EM_BANKS:
            raise FinsAddressError(field, text, f"EM bank {bank:X} (hex) does not exist: banks are 0..18 hex")
    elif current := _EM_CURRENT.fullmatch(spelled):
        area, word_text, bit_text = "EM", current["word"], current["bit"]
    else:
        raise FinsAddressError(
            field,
            text,
            "not an Omron address: write the area, the word and for a bit .NN, e.g. D100, W10.05, CIO0.00, "
            "H5, A448, E0_100 or EM0:100 (bank in hex), EM100 (current bank)",
        )
    word = int(word_text)
    if word >= AREA_WORDS[area]:
        raise FinsAddressError(field, text, f"word {word} is past the {area} area's last word {AREA_WORDS[area] - 1}")
    bit = None if bit_text is None else int(bit_text)
    if bit is not None and bit > 15:
        raise FinsAddressError(field, text, f"bit {bit} does not exist: a word has bits 00..15")
    return FinsAddress(area, word, bit, bank)
