"""Pure Modbus value codec: registers ↔ typed values, in any byte/word order, with scale and offset.

Orders name the bytes of a value as they sit in consecutive registers, first register first:

======  =====================  ======================================  ==========================
order   32-bit registers       64-bit registers                        meaning
======  =====================  ======================================  ==========================
ABCD    ``AB CD``              ``AB CD EF GH``                          big-endian (Modbus default)
CDAB    ``CD AB``              ``GH EF CD AB``                          words swapped
BADC    ``BA DC``              ``BA DC FE HG``                          bytes swapped in each word
DCBA    ``DC BA``              ``HG FE DC BA``                          little-endian
======  =====================  ======================================  ==========================

16-bit values only know byte swapping (BADC and DCBA swap, ABCD and CDAB do not). Strings are
two characters per register, first character in the high byte; BADC and DCBA put it in the low
byte; word order never applies to text. Trailing NULs are dropped on decode and padded on encode.

A scaled integer is rounded to the decimals its scale and offset imply (``71 * 0.1`` is
``7.1000000000000005`` in binary; published as ``7.1``), or to an explicit ``decimals``. A float
register is rounded only to an explicit ``decimals``: its own precision is unknown.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Sequence
from typing import Literal

from model.written import as_written

__all__ = [
    "ORDERS",
    "TYPES",
    "Kind",
    "Order",
    "RegisterCodec",
    "decimals_of",
    "decode",
    "encode",
    "register_count",
]

Kind = Literal["bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"]
Order = Literal["ABCD", "CDAB", "BADC", "DCBA"]

TYPES: tuple[Kind, ...] = Kind.__args__  # type: ignore[attr-defined]
ORDERS: tuple[Order, ...] = Order.__args__  # type: ignore[attr-defined]

# kind -> (struct format of the big-endian value, registers)
_FORMATS: dict[str, tuple[str, int]] = {
    "int16": (">h", 1),
    "uint16": (">H", 1),
    "int32": (">i", 2),
    "uint32": (">I", 2),
    "int64": (">q", 4),
    "uint64": (">Q", 4),
    "float32": (">f", 2),
    "float64": (">d", 4),
}
_INT_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_WORD_SWAP = {"ABCD": False, "CDAB": True, "BADC": False, "DCBA": True}
_BYTE_SWAP = {"ABCD": False, "CDAB": False, "BADC": True, "DCBA": True}
# (kind, order) -> (the registers as the value's bytes, the value, whether the words run backwards):
# built once, as decode runs for every tag of every read
_NUMERIC: dict[tuple[str, str], tuple[struct.Struct, struct.Struct, bool]] = {
    (kind, order): (
        struct.Struct(("<" if _BYTE_SWAP[order] else ">") + "H" * size),
        struct.Struct(fmt),
        _WORD_SWAP[order],
    )
    for kind, (fmt, size) in _FORMATS.items()
    for order in _WORD_SWAP
}


def register_count(kind: Kind, length: int | None = None) -> int:
    """Registers (or bits, for ``bool``) a value of ``kind`` occupies; ``length`` is a string's registers."""
    if kind == "bool":
        return 1
    if kind == "string":
        if length is None or length < 1:
            raise ValueError("a string needs length >= 1 (registers)")
        return length
    return _FORMATS[kind][1]


def decimals_of(number: float) -> int:
    """Decimals of a number as written (shortest repr): ``0.1`` -> 1, ``0.25`` -> 2, ``1e-05`` -> 5, ``2.0`` -> 0."""
    if not math.isfinite(number):
        return 0
    exponent = as_written(number).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _text_bytes(words: Sequence[int], order: Order) -> bytes:
    """A string's registers as its bytes: byte order applies, word order never does."""
    return struct.pack(("<" if _BYTE_SWAP[order] else ">") + "H" * len(words), *words)


def _text_words(data: bytes, order: Order) -> list[int]:
    return list(struct.unpack(("<" if _BYTE_SWAP[order] else ">") + "H" * (len(data) // 2), data))


def decode(kind: Kind, order: Order, words: Sequence[int]) -> int | float | str | bool:
    """Decode a raw value (no scaling) from its registers; ``bool`` takes one bit (0/1 or False/True).

    Raises:
        ValueError: when ``words`` holds the wrong number of registers for ``kind``.
    """
    if kind == "bool":
        if len(words) != 1:
            raise ValueError(f"bool takes 1 bit, got {len(words)}")
        return bool(words[0])
    if kind == "string":
        return _text_bytes(words, order).rstrip(b"\x00").decode("utf-8", errors="replace")
    registers, number, backwards = _NUMERIC[kind, order]
    if len(words) != registers.size // 2:
        raise ValueError(f"{kind} takes {registers.size // 2} registers, got {len(words)}")
    value: int | float = number.unpack(registers.pack(*(words[::-1] if backwards else words)))[0]
    return value


def encode(kind: Kind, order: Order, value: object, *, length: int | None = None) -> list[int]:
    """Encode a raw value (no scaling) into registers; ``bool`` gives ``[0]`` or ``[1]``.

    Raises:
        ValueError: the value has the wrong type, is out of the type's range, or a string is too long;
            the message names the type and the limit.
    """
    if kind == "bool":
        if not isinstance(value, bool | int) or value not in (0, 1):
            raise ValueError(f"bool needs true/false (got {value!r})")
        return [int(value)]
    if kind == "string":
        if not isinstance(value, str):
            raise ValueError(f"string needs text (got {value!r})")
        size = register_count("string", length)
        data = value.encode("utf-8")
        if len(data) > 2 * size:
            raise ValueError(f"string of {len(data)} bytes does not fit {size} registers ({2 * size} bytes)")
        return _text_words(data.ljust(2 * size, b"\x00"), order)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{kind} needs a number (got {value!r})")
    if kind in _INT_RANGES:
        if isinstance(value, float):
            if not math.isfinite(value) or value != int(value):
                raise ValueError(f"{kind} needs a whole number (got {value!r})")
            value = int(value)
        low, high = _INT_RANGES[kind]
        if not low <= value <= high:
            raise ValueError(f"{kind} holds {low}..{high} (got {value})")
    elif kind == "float32" and math.isfinite(value) and abs(value) > 3.4028234663852886e38:
        raise ValueError(f"float32 holds ±3.4028235e38 (got {value!r})")
    registers, number, backwards = _NUMERIC[kind, order]
    words = list(registers.unpack(number.pack(value)))
    return words[::-1] if backwards else words


@dataclasses.dataclass(frozen=True, slots=True)
class RegisterCodec:
    """How one tag turns registers into its published value and back: type, order, scale, offset."""

    kind: Kind
    order: Order = "ABCD"
    length: int | None = None
    """Registers of a string."""
    scale: float = 1.0
    offset: float = 0.0
    decimals: int | None = None
    """Round the published value to this many decimals; None: what scale and offset imply (integers only)."""
    precision: int | None = dataclasses.field(init=False, repr=False, compare=False)
    """Decimals a decoded number is rounded to, or None (not rounded): ``decimals`` if set, else those
    scale and offset imply for an integer register (scale 0.1 -> 1, 0.01 -> 2, 0.5 -> 1, offset 0.25 -> 2);
    a float register is not rounded unless ``decimals`` says so. Worked out once: decode runs per reading."""

    scaled: bool = dataclasses.field(init=False, repr=False, compare=False)
    """Whether scale/offset apply (the published value is then a float); worked out once, as ``precision``."""

    def __post_init__(self) -> None:
        scaled = self.kind not in ("bool", "string") and (self.scale != 1.0 or self.offset != 0.0)
        digits = self.decimals
        if digits is None and scaled and self.kind in _INT_RANGES:
            digits = max(decimals_of(self.scale), decimals_of(self.offset))
        object.__setattr__(self, "scaled", scaled)  # frozen: set once here
        object.__setattr__(self, "precision", digits)

    @property
    def size(self) -> int:
        """Registers (bits for ``bool``) the tag occupies."""
        return register_count(self.kind, self.length)

    def decode(self, words: Sequence[int]) -> int | float | str | bool:
        """The published value: raw value, times scale, plus offset, rounded to ``precision``."""
        raw = decode(self.kind, self.order, words)
        value = float(raw) * self.scale + self.offset if self.scaled else raw
        if self.precision is not None and isinstance(value, float) and math.isfinite(value):
            return round(value, self.precision)
        return value

    def encode(self, value: object) -> list[int]:
        """Registers for a published value: ``(value - offset) / scale``, rounded for integer types.

        Raises:
            ValueError: as :func:`encode`, naming the raw value when scaling put it out of range.
        """
        if self.scaled:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{self.kind} (scaled) needs a number (got {value!r})")
            raw: float = (value - self.offset) / self.scale
            if self.kind in _INT_RANGES:
                if not math.isfinite(raw):
                    raise ValueError(f"{value!r} scales to {raw!r}, not a {self.kind}")
                return encode(self.kind, self.order, round(raw))
            return encode(self.kind, self.order, raw)
        return encode(self.kind, self.order, value, length=self.length)
