"""Cayenne LPP (Low Power Payload): frames of (channel, type, value) decoded to an object and encoded back.

Each entry is one channel byte, one type byte (the IPSO object id minus 3200), then the value in a
fixed size, big-endian, scaled. The object's keys are ``<type name>_<channel>`` as The Things Stack's
Cayenne LPP formatter names them (``temperature_3``, ``gps_1`` with latitude, longitude, altitude),
so a metric path reads the same whether the network server or this codec decoded the payload.

Types: the myDevices spec (digital and analog in/out, luminosity, presence, temperature, relative
humidity, accelerometer, barometric pressure, gyrometer, GPS) and The Things Network's extension
(voltage 116, current 117, frequency 118: 2 bytes 0.01 signed; energy 131: 3 bytes 0.01 signed).
Other libraries give some of those codes other sizes (ElectronicCats' energy is 4 bytes in Wh):
a device must be read with the table it was written with.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

__all__ = ["LPP_TYPES", "CayenneLpp", "LppError", "LppType", "decode_lpp", "encode_lpp"]


class LppError(ValueError):
    """A frame that is not Cayenne LPP; names the byte offset (decoding) or the key (encoding)."""

    def __init__(self, reason: str, *, offset: int | None = None, key: str | None = None) -> None:
        self.offset = offset
        self.key = key
        where = f"byte {offset}" if offset is not None else f"key {key!r}"
        super().__init__(f"Cayenne LPP {where}: {reason}")


@dataclasses.dataclass(frozen=True, slots=True)
class LppType:
    """One data type: its code, key name, byte size per axis, scale and sign, and axis names if several."""

    code: int
    name: str
    size: int
    scale: float
    signed: bool
    axes: tuple[str, ...] = ()
    axis_scales: tuple[float, ...] = ()
    length: int = dataclasses.field(init=False)
    """Value bytes after the type byte."""
    decimals: tuple[int, ...] = dataclasses.field(init=False)
    """Decimal places of each value (one, or one per axis): what a step of the scale can show."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "length", self.size * max(1, len(self.axes)))
        object.__setattr__(self, "decimals", tuple(_decimals(s) for s in (self.axis_scales or (self.scale,))))


def _decimals(scale: float) -> int:
    return max(0, -math.floor(math.log10(scale) + 1e-9))


_XYZ = ("x", "y", "z")
LPP_TYPES: Mapping[int, LppType] = {
    t.code: t
    for t in (
        LppType(0, "digital_in", 1, 1, False),
        LppType(1, "digital_out", 1, 1, False),
        LppType(2, "analog_in", 2, 0.01, True),
        LppType(3, "analog_out", 2, 0.01, True),
        LppType(101, "luminosity", 2, 1, False),
        LppType(102, "presence", 1, 1, False),
        LppType(103, "temperature", 2, 0.1, True),
        LppType(104, "relative_humidity", 1, 0.5, False),
        LppType(113, "accelerometer", 2, 0.001, True, _XYZ, (0.001, 0.001, 0.001)),
        LppType(115, "barometric_pressure", 2, 0.1, False),
        LppType(116, "voltage", 2, 0.01, True),
        LppType(117, "current", 2, 0.01, True),
        LppType(118, "frequency", 2, 0.01, True),
        LppType(131, "energy", 3, 0.01, True),
        LppType(134, "gyrometer", 2, 0.01, True, _XYZ, (0.01, 0.01, 0.01)),
        LppType(136, "gps", 3, 0.0001, True, ("latitude", "longitude", "altitude"), (0.0001, 0.0001, 0.01)),
    )
}
"""Every type this codec reads and writes, by code."""
_BY_NAME = {t.name: t for t in LPP_TYPES.values()}


def _number(raw: int, scale: float, decimals: int) -> int | float:
    if scale == 1:
        return raw
    return round(raw * scale, decimals)  # 272 * 0.1 is 27.200000000000003; the frame means 27.2


def decode_lpp(data: bytes) -> dict[str, object]:
    """The object of a Cayenne LPP uplink frame; raises ``LppError`` naming the offset of what is wrong.

    A channel's type seen twice keeps the last value (as The Things Stack's formatter does).
    """
    out: dict[str, object] = {}
    position = 0
    while position < len(data):
        if position + 2 > len(data):
            raise LppError("a channel without its type (the frame ends)", offset=position)
        channel, code = data[position], data[position + 1]
        kind = LPP_TYPES.get(code)
        if kind is None:
            raise LppError(f"unknown type {code} on channel {channel}", offset=position + 1)
        start, length, size = position + 2, kind.length, kind.size
        if start + length > len(data):
            raise LppError(
                f"{kind.name} on channel {channel} needs {length} bytes, the frame has {len(data) - start}",
                offset=start,
            )
        key = f"{kind.name}_{channel}"
        if kind.axes:
            out[key] = {
                axis: _number(
                    int.from_bytes(data[start + i * size : start + (i + 1) * size], "big", signed=True),
                    scale,
                    kind.decimals[i],
                )
                for i, (axis, scale) in enumerate(zip(kind.axes, kind.axis_scales, strict=True))
            }
        else:
            raw = int.from_bytes(data[start : start + length], "big", signed=kind.signed)
            out[key] = _number(raw, kind.scale, kind.decimals[0])
        position = start + length
    return out


def _raw(value: object, scale: float, size: int, signed: bool, key: str) -> bytes:
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise LppError(f"{value!r} is not a number", key=key)
    raw = round(value / scale)
    try:
        return raw.to_bytes(size, "big", signed=signed)
    except OverflowError:
        raise LppError(f"{value!r} does not fit {size} byte(s) at {scale:g} per step", key=key) from None


def encode_lpp(values: Mapping[str, object]) -> bytes:
    """A Cayenne LPP frame of ``{"<type>_<channel>": value}`` (``{"x":, "y":, "z":}`` for the axis types)."""
    out = bytearray()
    for key, value in values.items():
        name, _, channel_text = key.rpartition("_")
        kind = _BY_NAME.get(name)
        if kind is None or not channel_text.isdigit() or int(channel_text) > 255:
            raise LppError("not <type>_<channel> with a known type and a channel 0..255", key=key)
        out += bytes((int(channel_text), kind.code))
        if kind.axes:
            if not isinstance(value, Mapping) or set(value) != set(kind.axes):
                raise LppError(f"{kind.name} needs an object with {', '.join(kind.axes)}", key=key)
            for axis, scale in zip(kind.axes, kind.axis_scales, strict=True):
                out += _raw(value[axis], scale, kind.size, kind.signed, key)
        else:
            out += _raw(value, kind.scale, kind.size, kind.signed, key)
    return bytes(out)


class CayenneLpp:
    """The built-in payload codec (any FPort)."""

    def decode(self, f_port: int, data: bytes) -> dict[str, object]:
        """The uplink's object."""
        del f_port  # Cayenne LPP frames describe themselves
        return decode_lpp(data)

    def encode(self, f_port: int, value: Mapping[str, object]) -> bytes:
        """A downlink frame."""
        del f_port
        return encode_lpp(value)
