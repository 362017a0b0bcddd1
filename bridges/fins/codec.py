"""Values in Omron words, pure: each word big-endian on the wire, multi-word values low word first.

That is how CS/CJ/NJ/NX store a DINT, UDINT, REAL or LREAL: ``D100`` holds the low 16 bits and
``D101`` the high ones. Strings hold two characters per word, the first in the high byte
(``AB`` = ``0x4142``) unless ``byte_order`` is ``"low_first"``; trailing NULs end the text.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from types import MappingProxyType

from model.bridges.fins import FinsType, StringByteOrder

__all__ = ["TYPE_WORDS", "decode", "encode", "word_count"]

TYPE_WORDS: Mapping[str, int] = MappingProxyType(
    {"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "float64": 4}
)
_STRUCT: Mapping[str, str] = MappingProxyType(
    {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f", "float64": "d"}
)


def word_count(type_: FinsType, length: int | None = None) -> int:
    """Words a value of ``type_`` takes (a string: ``length`` words)."""
    return (length or 1) if type_ == "string" else TYPE_WORDS[type_]


def _to_words(raw: bytes) -> bytes:
    # big-endian value bytes -> wire bytes of its words, lowest word first
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    return b"".join(reversed(words))


def decode(
    data: bytes, type_: FinsType, *, bit: int | None = None, byte_order: StringByteOrder = "high_first"
) -> bool | int | float | str:
    """The value in ``data`` (the tag's words as read, 2 bytes each); ``bit`` picks one bit of the first word."""
    if bit is not None:
        return bool(int.from_bytes(data[0:2], "big") >> bit & 1)
    if type_ == "bool":
        return int.from_bytes(data[0:2], "big") != 0
    if type_ == "string":
        text = data if byte_order == "high_first" else b"".join(data[i + 1 : i + 2] + data[i : i + 1]
                                                                 for i in range(0, len(data), 2))  # fmt: skip
        return text.split(b"\x00", 1)[0].decode("latin-1")
    (value,) = struct.unpack(">" + _STRUCT[type_], _to_words(data[: 2 * TYPE_WORDS[type_]]))
    return float(value) if type_.startswith("float") else int(value)


def encode(
    value: bool | int | float | str,
    type_: FinsType,
    *,
    length: int | None = None,
    byte_order: StringByteOrder = "high_first",
) -> bytes:
    """The wire bytes of the words holding ``value``.

    Raises:
        ValueError: the value does not fit the type (out of range, not finite for an integer, text too long).
    """
    if type_ == "string":
        raw = str(value).encode("latin-1")
        size = 2 * (length or 1)
        if len(raw) > size:
            raise ValueError(f"{len(raw)} characters do not fit {length} words ({size} characters)")
        raw = raw.ljust(size, b"\x00")
        if byte_order == "low_first":
            raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, size, 2))
        return raw
    if type_ == "bool":
        return (1 if value else 0).to_bytes(2, "big")
    if isinstance(value, str):
        raise ValueError(f"{value!r} is text, not a number for a {type_}")
    code = _STRUCT[type_]
    if type_.startswith("float"):
        number: float = float(value)
        try:
            return _to_words(struct.pack(">" + code, number))
        except OverflowError:
            raise ValueError(f"{value} is out of range of a {type_}") from None
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        raise ValueError(f"{value} is not a whole number for a {type_}")
    try:
        return _to_words(struct.pack(">" + code, int(value)))
    except struct.error:
        raise ValueError(f"{value} is out of range of a {type_}") from None
