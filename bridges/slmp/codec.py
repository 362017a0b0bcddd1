"""Pure SLMP value codec: device words <-> typed values, in the order Mitsubishi CPUs and GX Works keep them.

A 32- or 64-bit value takes consecutive words, low word first (D100 holds the low 16 bits of a
double word at D100); each word is little-endian on the wire, so the bytes of a value are plain
little-endian. A ``string`` holds bytes, first character in the low byte of the first word (the
way GX Works stores String: "AB" in D0 reads D0 = 0x4241), NUL-padded; it is decoded as Shift-JIS
(ASCII is a subset). A ``wstring`` is UTF-16LE, one character per word (String[Unicode]).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from model.bridges.slmp import SlmpType

__all__ = ["decode", "encode"]

_FORMATS: dict[str, str] = {
    "int16": "<h", "uint16": "<H", "int32": "<i", "uint32": "<I", "float32": "<f", "float64": "<d",
}  # fmt: skip
_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}
_TEXT = {"string": "shift_jis", "wstring": "utf-16-le"}


def _bytes(words: Sequence[int]) -> bytes:
    return struct.pack(f"<{len(words)}H", *words)


def decode(type_: SlmpType, words: Sequence[int], bit: int | None = None) -> int | float | str | bool:
    """The value held in ``words``; a ``bool`` is bit ``bit`` of its one word.

    Raises:
        ValueError: the wrong number of words for the type.
    """
    if type_ == "bool":
        if len(words) != 1 or bit is None:
            raise ValueError(f"bool takes one word and a bit (got {len(words)} words, bit {bit})")
        return bool(words[0] >> bit & 1)
    data = _bytes(words)
    if type_ in _TEXT:
        text = data.decode(_TEXT[type_], errors="replace")
        end = text.find("\x00")
        return text if end < 0 else text[:end]
    size = struct.calcsize(_FORMATS[type_])
    if len(data) != size:
        raise ValueError(f"{type_} takes {size // 2} words, got {len(words)}")
    value: int | float = struct.unpack(_FORMATS[type_], data)[0]
    return value


def encode(type_: SlmpType, value: object, *, length: int | None = None) -> list[int]:
    """The words that hold ``value`` (a ``bool``: ``[0]`` or ``[1]``, written as one bit).

    Raises:
        ValueError: a value of the wrong kind, out of the type's range, or text too long; names the limit.
    """
    if type_ == "bool":
        if not isinstance(value, bool | int) or value not in (0, 1):
            raise ValueError(f"bool needs true/false (got {value!r})")
        return [int(value)]
    if type_ in _TEXT:
        if not isinstance(value, str):
            raise ValueError(f"{type_} needs text (got {value!r})")
        size = 2 * (length or 1)
        try:
            data = value.encode(_TEXT[type_])
        except UnicodeEncodeError as exc:
            raise ValueError(f"{type_}: {value!r} has characters {_TEXT[type_]} cannot hold") from exc
        if len(data) > size:
            raise ValueError(f"{type_} of {len(data)} bytes does not fit {size // 2} words ({size} bytes)")
        data = data.ljust(size, b"\x00")
        return list(struct.unpack(f"<{size // 2}H", data))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{type_} needs a number (got {value!r})")
    if type_ in _RANGES:
        if isinstance(value, float):
            if not math.isfinite(value) or value != int(value):
                raise ValueError(f"{type_} needs a whole number (got {value!r})")
            value = int(value)
        low, high = _RANGES[type_]
        if not low <= value <= high:
            raise ValueError(f"{type_} holds {low}..{high} (got {value})")
    elif type_ == "float32" and math.isfinite(value) and abs(value) > 3.4028234663852886e38:
        raise ValueError(f"float32 holds ±3.4028235e38 (got {value!r})")
    data = struct.pack(_FORMATS[type_], value)
    return list(struct.unpack(f"<{len(data) // 2}H", data))
