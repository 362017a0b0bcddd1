"""S7 addresses as users write them (``DB1.DBX0.3``, ``MW20``, ``T5``), parsed once into a value type.

Notation (case-insensitive; German mnemonics E/A/Z accepted for I/Q/C):

- data blocks: ``DB<n>.DBX<byte>.<bit>``, ``DB<n>.DBB<byte>``, ``DB<n>.DBW<byte>``, ``DB<n>.DBD<byte>``
- merkers, inputs, outputs: ``M10.1`` (or ``MX10.1``), ``MB10``, ``MW20``, ``MD30``; ``I0.0``, ``IB0``,
  ``IW2``, ``ID4``; ``Q0.1``, ``QB1``, ``QW2``, ``QD4``; LOGO! ``V10.3``, ``VB10``, ``VW20``, ``VD30`` (V
  memory is DB1)
- timers and counters: ``T5``, ``C3``
- the type is the tag's ``type`` field, or a ``:TYPE`` suffix (``DB1.DBD4:REAL``); without either it
  follows the width letter (X BOOL, B BYTE, W WORD, D DWORD; T S5TIME, C COUNTER).

The width letter must fit the type: X for BOOL, W for the 2-byte types, D for the 4-byte ones, and B
(the first byte) for BYTE, SINT, USINT, CHAR and the long types (LREAL, LINT, STRING, WSTRING,
DATE_AND_TIME, DTL ...).
"""

from __future__ import annotations

import dataclasses
import re
from enum import IntEnum
from typing import Literal

__all__ = [
    "S7_TYPES",
    "S7Address",
    "S7AddressError",
    "S7Area",
    "S7Type",
    "S7TypeName",
    "parse_address",
]

S7TypeName = Literal[
    "BOOL", "BYTE", "WORD", "DWORD", "LWORD", "SINT", "USINT", "INT", "UINT", "DINT", "UDINT", "LINT",
    "ULINT", "REAL", "LREAL", "CHAR", "STRING", "WSTRING", "TIME", "DATE_AND_TIME", "DTL", "S5TIME", "COUNTER",
]  # fmt: skip
"""The S7 types a tag may have."""


class S7Area(IntEnum):
    """Memory areas with their S7 protocol codes (the address specification's area byte)."""

    PE = 0x81
    """Process inputs (I / E)."""
    PA = 0x82
    """Process outputs (Q / A)."""
    MK = 0x83
    """Merkers / flags (M)."""
    DB = 0x84
    """Data blocks (and LOGO! V memory, DB1)."""
    CT = 0x1C
    """Counters (C / Z): 2 bytes per counter, addressed by number."""
    TM = 0x1D
    """Timers (T): 2 bytes per timer, addressed by number."""


@dataclasses.dataclass(frozen=True, slots=True)
class S7Type:
    """A type's fixed byte size (0 = sized by ``length``), Sparkplug datatype name and allowed widths."""

    name: str
    size: int
    datatype: str
    widths: str
    """Address width letters the type may be written with."""


_LONG = "B"  # multi-byte types without a width letter of their own start at a byte address
S7_TYPES: dict[str, S7Type] = {
    t.name: t
    for t in (
        S7Type("BOOL", 1, "Boolean", "X"),
        S7Type("BYTE", 1, "UInt8", "B"),
        S7Type("USINT", 1, "UInt8", "B"),
        S7Type("SINT", 1, "Int8", "B"),
        S7Type("CHAR", 1, "String", "B"),
        S7Type("WORD", 2, "UInt16", "W"),
        S7Type("UINT", 2, "UInt16", "W"),
        S7Type("INT", 2, "Int16", "W"),
        S7Type("DWORD", 4, "UInt32", "D"),
        S7Type("UDINT", 4, "UInt32", "D"),
        S7Type("DINT", 4, "Int32", "D"),
        S7Type("REAL", 4, "Float", "D"),
        S7Type("TIME", 4, "Int32", "D"),
        S7Type("LWORD", 8, "UInt64", _LONG),
        S7Type("LINT", 8, "Int64", _LONG),
        S7Type("ULINT", 8, "UInt64", _LONG),
        S7Type("LREAL", 8, "Double", _LONG),
        S7Type("DATE_AND_TIME", 8, "DateTime", _LONG),
        S7Type("DTL", 12, "DateTime", _LONG),
        S7Type("STRING", 0, "String", _LONG),
        S7Type("WSTRING", 0, "String", _LONG),
        S7Type("S5TIME", 2, "UInt32", "TW"),
        S7Type("COUNTER", 2, "UInt16", "CW"),
    )
}
_DEFAULT_TYPE = {"X": "BOOL", "B": "BYTE", "W": "WORD", "D": "DWORD", "T": "S5TIME", "C": "COUNTER"}
_AREA_OF = {"M": S7Area.MK, "I": S7Area.PE, "E": S7Area.PE, "Q": S7Area.PA, "A": S7Area.PA, "V": S7Area.DB}
_MAX_OFFSET = 0xFFFF  # the address field is 3 bytes of bit address; real CPUs stop far below 64 KiB per area

_DB_RE = re.compile(r"^DB(\d+)\.DB([XBWD])(\d+)(?:\.(\d+))?$")
_MEM_RE = re.compile(r"^([MIEQAV])([XBWD]?)(\d+)(?:\.(\d+))?$")
_TC_RE = re.compile(r"^([TCZ])(\d+)$")


class S7AddressError(ValueError):
    """An address that does not parse or does not fit its type; the message names address and reason."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"S7 address {address!r}: {reason}")


@dataclasses.dataclass(frozen=True, slots=True)
class S7Address:
    """Where one tag lives: area, DB number, byte offset (T/C: element number), bit, type and length."""

    text: str
    """As the user wrote it."""
    area: S7Area
    db: int
    start: int
    bit: int | None
    type: S7Type
    length: int = 0
    """STRING/WSTRING: the declared maximum number of characters."""

    @property
    def size(self) -> int:
        """Bytes it occupies (a BOOL: its byte)."""
        if self.type.name == "STRING":
            return 2 + self.length
        if self.type.name == "WSTRING":
            return 4 + 2 * self.length
        return self.type.size

    @property
    def units(self) -> int:
        """Addressing units it occupies: bytes, or elements of 2 bytes in T and C."""
        return 1 if self.area in (S7Area.TM, S7Area.CT) else self.size

    def __str__(self) -> str:
        return self.text


def parse_address(text: str, type_name: str | None = None, length: int | None = None) -> S7Address:
    """Parse ``text`` with the type from the tag (or the ``:TYPE`` suffix, or the width letter).

    ``length`` is the maximum characters of a STRING/WSTRING (default 254, the S7 default).
    """
    spec, _, suffix = text.strip().upper().partition(":")
    spec = spec.replace(" ", "")
    if suffix:
        suffix = suffix.strip()
        if type_name is not None and type_name.upper() != suffix:
            raise S7AddressError(text, f"the suffix says {suffix} but the tag's type is {type_name}")
        type_name = suffix
    area, db, start, bit, width = _locate(text, spec)
    name = (type_name or _DEFAULT_TYPE[width]).upper()
    s7type = S7_TYPES.get(name)
    if s7type is None:
        raise S7AddressError(text, f"unknown type {name}; one of {', '.join(S7_TYPES)}")
    if width not in s7type.widths:
        hint = {"X": "a bit (.n)", "B": "a byte (B)", "W": "a word (W)", "D": "a double word (D)"}
        wanted = ", ".join(hint.get(w, w) for w in s7type.widths if w in hint) or "a timer or counter"
        raise S7AddressError(text, f"type {name} needs {wanted} address, not width {width}")
    if s7type.size == 0:
        length = 254 if length is None else length
        if not 1 <= length <= (254 if name == "STRING" else 16382):
            raise S7AddressError(text, f"{name} length must be 1..{254 if name == 'STRING' else 16382} (got {length})")
    elif length is not None:
        raise S7AddressError(text, f"length applies to STRING and WSTRING, not {name}")
    address = S7Address(text=text, area=area, db=db, start=start, bit=bit, type=s7type, length=length or 0)
    if area not in (S7Area.TM, S7Area.CT) and start + address.size - 1 > _MAX_OFFSET:
        raise S7AddressError(text, f"byte {start} + {address.size} bytes is past the area's end ({_MAX_OFFSET})")
    return address


def _locate(text: str, spec: str) -> tuple[S7Area, int, int, int | None, str]:
    """Area, DB number, start, bit and width letter of an address without its type suffix."""
    if match := _DB_RE.match(spec):
        db, width, offset, bit = int(match[1]), match[2], int(match[3]), match[4]
        if not 1 <= db <= 65535:
            raise S7AddressError(text, f"DB number must be 1..65535 (got {db})")
        area = S7Area.DB
    elif match := _MEM_RE.match(spec):
        letter, width, offset, bit = match[1], match[2], int(match[3]), match[4]
        area = _AREA_OF[letter]
        db = 1 if letter == "V" else 0
        if not width:
            if bit is None:
                raise S7AddressError(text, f"give a width ({letter}B, {letter}W, {letter}D) or a bit ({letter}n.b)")
            width = "X"
    elif match := _TC_RE.match(spec):
        letter, number = match[1], int(match[2])
        if number > 0xFFFF:
            raise S7AddressError(text, f"number must be 0..65535 (got {number})")
        return (S7Area.TM if letter == "T" else S7Area.CT), 0, number, None, ("T" if letter == "T" else "C")
    else:
        raise S7AddressError(
            text, "not an S7 address (DB1.DBX0.3, DB1.DBW2, DB1.DBD4, M10.1, MW20, I0.0, QB1, V10.3, T5, C3)"
        )
    if width == "X":
        if bit is None:
            raise S7AddressError(text, "a bit address needs .bit (0..7)")
        if int(bit) > 7:
            raise S7AddressError(text, f"bit must be 0..7 (got {bit})")
        return area, db, offset, int(bit), width
    if bit is not None:
        raise S7AddressError(text, f"width {width} takes no bit (.{bit}); a bit is DBX/X (DB1.DBX0.3, M10.1)")
    return area, db, offset, None, width
