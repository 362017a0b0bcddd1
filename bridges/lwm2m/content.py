"""LwM2M payloads to typed values and back, by CoAP content format (plain text, opaque, CBOR, TLV, SenML).

Pure: no I/O, no clock. A payload whose structure is broken is refused whole (``ContentError`` naming
the byte or the record and field); a well-formed payload keeps every value that fits its resource's
datatype and names each that does not, so one bad resource costs nothing else.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable

import cbor2

from bridges.lwm2m.ipso import Path
from bridges.lwm2m.senml import Value, decode_senml_cbor, decode_senml_json, encode_senml_cbor, encode_senml_json
from bridges.lwm2m.tlv import ContentError, decode_tlv, encode_tlv
from uns.sparkplug import DataType, MetricValue

__all__ = [
    "CBOR",
    "FORMATS",
    "LINK",
    "OPAQUE",
    "SENML_CBOR",
    "SENML_JSON",
    "TEXT",
    "TLV",
    "Decoded",
    "Reading",
    "decode",
    "encode_write",
    "plain_value",
    "tlv_value",
]

TEXT, LINK, OPAQUE, CBOR, SENML_JSON, SENML_CBOR, TLV = 0, 40, 42, 60, 110, 112, 11542
FORMATS = {"text": TEXT, "opaque": OPAQUE, "cbor": CBOR, "senml_json": SENML_JSON, "senml_cbor": SENML_CBOR, "tlv": TLV}
"""Config names of the content formats, and their CoAP numbers."""

_INTEGERS = frozenset({DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64, DataType.UInt8,
                       DataType.UInt16, DataType.UInt32, DataType.UInt64})  # fmt: skip
_FLOATS = frozenset({DataType.Float, DataType.Double})

TypeOf = Callable[[Path], DataType | None]
"""The datatype of a configured resource path; None = not configured (its values are ignored)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """One resource value: path, value, when the device says it was taken (ms; None = on arrival)."""

    path: Path
    value: MetricValue
    timestamp_ms: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Decoded:
    """What a payload held: the readings of configured resources, and one line per value refused."""

    readings: list[Reading]
    problems: list[str]


def _fit(value: Value, datatype: DataType) -> MetricValue:
    """A decoded value as ``datatype``; ValueError saying why it cannot be."""
    if datatype is DataType.Boolean:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        raise ValueError(f"a Boolean is true/false or 0/1 (got {value!r})")
    if datatype in _INTEGERS or datatype is DataType.DateTime:
        if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
            raise ValueError(f"an integer resource got {value!r}")
        return int(value) * (1000 if datatype is DataType.DateTime else 1)  # LwM2M Time is in seconds
    if datatype in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"a Float resource got {value!r}")
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _from_text(text: str, datatype: DataType) -> Value:
    if datatype is DataType.Boolean:
        if text not in ("0", "1"):
            raise ValueError(f"a Boolean in plain text is 0 or 1 (got {text!r})")
        return text == "1"
    if datatype in _INTEGERS or datatype is DataType.DateTime:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"not an integer: {text!r}") from None
    if datatype in _FLOATS:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"not a number: {text!r}") from None
        if not math.isfinite(number) and text.strip().lower() not in ("nan", "inf", "-inf"):
            raise ValueError(f"not a number: {text!r}")  # pragma: no cover
        return number
    return text


def _from_tlv(raw: bytes, datatype: DataType) -> Value:
    if datatype is DataType.Boolean:
        if raw not in (b"\x00", b"\x01"):
            raise ValueError(f"a TLV Boolean is one byte 0 or 1 (got {raw.hex()})")
        return raw == b"\x01"
    if datatype in _INTEGERS or datatype is DataType.DateTime:
        if len(raw) not in (1, 2, 4, 8):
            raise ValueError(f"a TLV integer is 1, 2, 4 or 8 bytes (got {len(raw)})")
        return int.from_bytes(raw, "big", signed=True)
    if datatype in _FLOATS:
        if len(raw) not in (4, 8):
            raise ValueError(f"a TLV float is 4 or 8 bytes (got {len(raw)})")
        return float(struct.unpack(">f" if len(raw) == 4 else ">d", raw)[0])
    if datatype in (DataType.String, DataType.Text):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 at value byte {exc.start}") from None
    return raw


def decode(payload: bytes, fmt: int | None, base: Path, type_of: TypeOf, *, now_ms: int) -> Decoded:
    """The values of a read or notification of ``base`` in content format ``fmt`` (None: plain text).

    Raises:
        ContentError: the payload is broken or in a format this server does not read.
    """
    readings: list[Reading] = []
    problems: list[str] = []

    def keep(path: Path, value: Value | bytes, where: str, convert: Callable[[bytes | str, DataType], Value] | None,
             stamp: int | None = None) -> None:  # fmt: skip
        datatype = type_of(path)
        if datatype is None:
            return
        try:
            typed = _fit(convert(value, datatype) if convert is not None else value, datatype)  # type: ignore[arg-type]
        except ValueError as exc:
            problems.append(f"{'/'.join(map(str, path))} ({where}): {exc}")
            return
        readings.append(Reading(path, typed, stamp))

    if fmt in (None, TEXT, OPAQUE, CBOR):
        if len(base) < 3:
            raise ContentError(_NAMES.get(fmt, "text"), "byte 0", f"a single value, so only a resource read ({base})")
        if fmt == OPAQUE:
            keep(base, payload, "opaque", None)
        elif fmt == CBOR:
            try:
                value = cbor2.loads(payload)
            except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, EOFError) as exc:
                raise ContentError("CBOR", "byte 0", f"not CBOR: {exc}") from None
            if not isinstance(value, int | float | str | bool | bytes):
                raise ContentError("CBOR", "byte 0", f"a single value (got {type(value).__name__})")
            keep(base, value, "CBOR", None)
        else:
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ContentError("text", f"byte {exc.start}", "not UTF-8") from None
            keep(base, text, "text", _from_text)  # type: ignore[arg-type]
    elif fmt == TLV:
        for entry in decode_tlv(payload, base):
            keep(entry.path, entry.value, f"TLV byte {entry.offset}", _from_tlv)  # type: ignore[arg-type]
    elif fmt in (SENML_JSON, SENML_CBOR):
        records = decode_senml_json(payload, now_ms) if fmt == SENML_JSON else decode_senml_cbor(payload, now_ms)
        for record in records:
            keep(record.path, record.value, record.where, None, record.timestamp_ms)
    else:
        raise ContentError(f"content format {fmt}", "byte 0", "not one this server reads (0, 42, 60, 110, 112, 11542)")
    return Decoded(readings, problems)


_NAMES = {None: "text", TEXT: "text", OPAQUE: "opaque", CBOR: "CBOR"}


def tlv_value(value: MetricValue, datatype: DataType) -> bytes:
    """A value as the bytes of a TLV resource of ``datatype``; ValueError if it cannot be one."""
    if datatype is DataType.Boolean:
        return b"\x01" if value else b"\x00"
    if isinstance(value, bool) or not isinstance(value, int | float | str | bytes):
        raise ValueError(f"cannot write {value!r}")
    if datatype in _INTEGERS or datatype is DataType.DateTime:
        number = int(value) // (1000 if datatype is DataType.DateTime else 1)
        size = next(n for n in (1, 2, 4, 8) if -(2 ** (8 * n - 1)) <= number < 2 ** (8 * n - 1))
        return number.to_bytes(size, "big", signed=True)
    if datatype in _FLOATS:
        return struct.pack(">d", float(value))
    return value if isinstance(value, bytes) else str(value).encode()


def plain_value(value: MetricValue, datatype: DataType) -> Value:
    """A value as SenML, CBOR or plain text carry it (LwM2M Time in seconds); ValueError if it cannot be one."""
    if datatype is DataType.Boolean:
        return bool(value)
    if datatype is DataType.DateTime and isinstance(value, int):
        return value // 1000
    if isinstance(value, int | float | str | bytes):
        return value
    raise ValueError(f"cannot write {value!r}")


def encode_write(path: Path, value: MetricValue, datatype: DataType, fmt: int) -> bytes:
    """The payload of a Write (PUT) of one resource in format ``fmt``; ValueError if the value cannot go."""
    if fmt == TEXT:
        plain = plain_value(value, datatype)
        return (("1" if plain else "0") if isinstance(plain, bool) else str(plain)).encode()
    if fmt == TLV:
        return encode_tlv([(path[2], tlv_value(value, datatype))])
    if fmt == CBOR:
        return cbor2.dumps(plain_value(value, datatype))
    if fmt == SENML_JSON:
        return encode_senml_json([(path, plain_value(value, datatype))])
    if fmt == SENML_CBOR:
        return encode_senml_cbor([(path, plain_value(value, datatype))])
    raise ValueError(f"content format {fmt} is not one this server writes")
