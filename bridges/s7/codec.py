"""S7 values to and from bytes: big-endian numbers, STRING/WSTRING, DATE_AND_TIME and DTL, S5TIME, counters.

Pure: no I/O, no clock. Dates are read as UTC (a PLC's clock has no zone; set it to UTC or convert
downstream) and published as Sparkplug DateTime, milliseconds since the epoch. STRING bytes are
Latin-1 (one byte per character, as S7 stores them); WSTRING is UTF-16 big-endian.
"""

from __future__ import annotations

import calendar
import datetime
import struct

from model.bridges.s7_address import S7Address
from uns.clock import at_epoch_ms
from uns.sparkplug import MetricValue

__all__ = ["S7CodecError", "decode", "encode", "sparkplug_datatype"]

_NUMBERS: dict[str, str] = {
    "BYTE": ">B", "USINT": ">B", "SINT": ">b", "WORD": ">H", "UINT": ">H", "INT": ">h",
    "DWORD": ">I", "UDINT": ">I", "DINT": ">i", "TIME": ">i", "LWORD": ">Q", "ULINT": ">Q", "LINT": ">q",
    "REAL": ">f", "LREAL": ">d",
}  # fmt: skip
_S5_BASES_MS = (10, 100, 1000, 10000)


class S7CodecError(ValueError):
    """Bytes that are not a valid value of the type, or a value that does not fit it; names the offset."""


def sparkplug_datatype(address: S7Address) -> str:
    """The Sparkplug datatype name the tag is published as."""
    return address.type.datatype


def decode(address: S7Address, data: bytes) -> MetricValue:
    """The value of ``address`` from its bytes (``address.size`` of them, a BOOL's byte included)."""
    name = address.type.name
    if len(data) != address.size:
        raise S7CodecError(f"{address.text}: {len(data)} bytes for a {address.size}-byte {name}")
    if name == "BOOL":
        return bool(data[0] >> (address.bit or 0) & 1)
    fmt = _NUMBERS.get(name)
    if fmt is not None:
        value: int | float = struct.unpack(fmt, data)[0]
        return value
    if name == "CHAR":
        return data.decode("latin-1")
    if name == "STRING":
        return _string(address, data)
    if name == "WSTRING":
        return _wstring(address, data)
    if name == "DATE_AND_TIME":
        return _date_and_time(address, data)
    if name == "DTL":
        return _dtl(address, data)
    if name == "S5TIME":
        return _s5time(address, data)
    if name == "COUNTER":
        return _bcd(address, data[0] << 8 | data[1], 0)
    raise S7CodecError(f"{address.text}: no decoder for {name}")  # pragma: no cover  (S7_TYPES is closed)


def encode(address: S7Address, value: MetricValue) -> tuple[int, bytes]:
    """Offset from the tag's first byte and the bytes to write there (BOOL: one byte, 0 or 1, for a bit write).

    STRING/WSTRING write their current length and characters and leave the declared maximum (the PLC's) alone.
    """
    name = address.type.name
    if name == "BOOL":
        if not isinstance(value, bool):
            raise S7CodecError(f"{address.text}: BOOL needs true or false (got {value!r})")
        return 0, bytes([value])
    fmt = _NUMBERS.get(name)
    if fmt is not None:
        return 0, _number(address, fmt, value)
    if name in ("STRING", "CHAR"):
        return _encode_string(address, value)
    if name == "WSTRING":
        if not isinstance(value, str):
            raise S7CodecError(f"{address.text}: WSTRING needs text (got {value!r})")
        if len(value) > address.length:
            raise S7CodecError(f"{address.text}: {len(value)} characters exceed WSTRING[{address.length}]")
        return 2, struct.pack(">H", len(value)) + value.encode("utf-16-be")
    if name in ("DATE_AND_TIME", "DTL"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise S7CodecError(f"{address.text}: {name} needs a DateTime (ms since the epoch, got {value!r})")
        moment = at_epoch_ms(value)
        return 0, _encode_dt(address, moment) if name == "DATE_AND_TIME" else _encode_dtl(moment)
    if name == "S5TIME":
        return 0, _encode_s5time(address, value)
    if name == "COUNTER":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 999:
            raise S7CodecError(f"{address.text}: a counter holds 0..999 (got {value!r})")
        digits = f"{value:03d}"
        return 0, bytes([int(digits[0]), int(digits[1]) << 4 | int(digits[2])])
    raise S7CodecError(f"{address.text}: {name} is not writable")  # pragma: no cover


def _number(address: S7Address, fmt: str, value: MetricValue) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise S7CodecError(f"{address.text}: {address.type.name} needs a number (got {value!r})")
    if fmt[-1] in "fd":
        return struct.pack(fmt, float(value))
    if isinstance(value, float) and not value.is_integer():
        raise S7CodecError(f"{address.text}: {address.type.name} needs a whole number (got {value!r})")
    try:
        return struct.pack(fmt, int(value))
    except struct.error:
        bits = struct.calcsize(fmt) * 8
        low, high = (-(1 << bits - 1), (1 << bits - 1) - 1) if fmt[-1].islower() else (0, (1 << bits) - 1)
        raise S7CodecError(f"{address.text}: {value} does not fit {address.type.name} ({low}..{high})") from None


def _string(address: S7Address, data: bytes) -> str:
    declared, current = data[0], data[1]
    if current > declared:
        raise S7CodecError(f"{address.text}: STRING header at byte {address.start + 1}: current length {current} "
                           f"exceeds its maximum {declared}")  # fmt: skip
    # the PLC's declared maximum may be larger than the tag's length: read what we were given
    return data[2 : 2 + min(current, address.length)].decode("latin-1")


def _wstring(address: S7Address, data: bytes) -> str:
    declared, current = struct.unpack(">HH", data[:4])
    if current > declared:
        raise S7CodecError(f"{address.text}: WSTRING header at byte {address.start + 2}: current length {current} "
                           f"exceeds its maximum {declared}")  # fmt: skip
    try:
        return data[4 : 4 + 2 * min(current, address.length)].decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise S7CodecError(f"{address.text}: WSTRING is not UTF-16 at byte {address.start + 4 + exc.start}") from None


def _bcd(address: S7Address, raw: int, offset: int) -> int:
    value = 0
    for shift in (12, 8, 4, 0):
        digit = raw >> shift & 0xF
        if digit > 9:
            raise S7CodecError(f"{address.text}: byte {address.start + offset} is not BCD ({raw:#06x})")
        value = value * 10 + digit
    return value


def _date_and_time(address: S7Address, data: bytes) -> int:
    fields = [_bcd(address, data[i], i) for i in range(6)]
    year, month, day, hour, minute, second = fields
    year += 1900 if year >= 90 else 2000
    millis = _bcd(address, (data[6] << 4) | (data[7] >> 4), 6)
    return _epoch_ms(address, year, month, day, hour, minute, second, millis * 1000)


def _dtl(address: S7Address, data: bytes) -> int:
    year, month, day, _weekday, hour, minute, second, nanos = struct.unpack(">HBBBBBBI", data)
    return _epoch_ms(address, year, month, day, hour, minute, second, nanos // 1000)


def _epoch_ms(address: S7Address, *fields: int) -> int:
    year, month, day, hour, minute, second, micros = fields
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, micros, tzinfo=datetime.UTC)
    except ValueError as exc:
        raise S7CodecError(f"{address.text}: not a {address.type.name} at byte {address.start}: {exc}") from None
    return calendar.timegm(moment.timetuple()) * 1000 + moment.microsecond // 1000


def _s5time(address: S7Address, data: bytes) -> int:
    raw = data[0] << 8 | data[1]
    return _bcd(address, raw & 0x0FFF, 0) * _S5_BASES_MS[raw >> 12 & 0x3]


def _encode_s5time(address: S7Address, value: MetricValue) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise S7CodecError(f"{address.text}: S5TIME needs milliseconds >= 0 (got {value!r})")
    for base, step in enumerate(_S5_BASES_MS):
        if value % step == 0 and value // step <= 999:
            digits = f"{value // step:03d}"
            return bytes([base << 4 | int(digits[0]), int(digits[1]) << 4 | int(digits[2])])
    raise S7CodecError(f"{address.text}: {value} ms is not an S5TIME (at most 9990 s, in steps of its base)")


def _encode_string(address: S7Address, value: MetricValue) -> tuple[int, bytes]:
    if not isinstance(value, str):
        raise S7CodecError(f"{address.text}: {address.type.name} needs text (got {value!r})")
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise S7CodecError(f"{address.text}: {value!r} has characters outside Latin-1 (use a WSTRING)") from None
    if address.type.name == "CHAR":
        if len(raw) != 1:
            raise S7CodecError(f"{address.text}: CHAR needs one character (got {value!r})")
        return 0, raw
    if len(raw) > address.length:
        raise S7CodecError(f"{address.text}: {len(raw)} characters exceed STRING[{address.length}]")
    return 1, bytes([len(raw)]) + raw


def _bcd_byte(number: int) -> int:
    return (number // 10) << 4 | number % 10


def _encode_dt(address: S7Address, moment: datetime.datetime) -> bytes:
    if not 1990 <= moment.year <= 2089:
        raise S7CodecError(f"{address.text}: DATE_AND_TIME holds 1990..2089 (got {moment.year})")
    millis = moment.microsecond // 1000
    weekday = moment.isoweekday() % 7 + 1  # S7: 1 = Sunday
    return bytes(
        [_bcd_byte(moment.year % 100), _bcd_byte(moment.month), _bcd_byte(moment.day), _bcd_byte(moment.hour),
         _bcd_byte(moment.minute), _bcd_byte(moment.second), _bcd_byte(millis // 10),
         (millis % 10) << 4 | weekday]
    )  # fmt: skip


def _encode_dtl(moment: datetime.datetime) -> bytes:
    weekday = moment.isoweekday() % 7 + 1
    return struct.pack(">HBBBBBBI", moment.year, moment.month, moment.day, weekday, moment.hour, moment.minute,
                       moment.second, moment.microsecond * 1000)  # fmt: skip
