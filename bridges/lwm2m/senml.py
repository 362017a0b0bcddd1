"""SenML JSON (110) and SenML CBOR (112), RFC 8428 as LwM2M 1.1 uses them: records to (path, value, time).

Pure: no I/O and no clock (relative times need ``now_ms`` from the caller). Errors name the record
index and the field (``record 2 'v'``); a CBOR or JSON payload that does not parse names the byte.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import math
from collections.abc import Mapping, Sequence

import cbor2

from bridges.lwm2m.ipso import Path, parse_path
from bridges.lwm2m.tlv import ContentError

__all__ = ["SenmlRecord", "Value", "decode_senml_cbor", "decode_senml_json", "encode_senml_cbor", "encode_senml_json"]

# RFC 8428 section 6: CBOR labels of the fields LwM2M uses (vlo, the object link, keeps its text label)
_CBOR_LABELS: Mapping[object, str] = {-2: "bn", -3: "bt", 0: "n", 1: "u", 2: "v", 3: "vs", 4: "vb", 6: "t", 8: "vd"}
_JSON_LABELS = {v: k for k, v in _CBOR_LABELS.items()}
_VALUE_FIELDS = ("v", "vs", "vb", "vd", "vlo")
_RELATIVE_LIMIT_S = 2**28  # RFC 8428 4.5.3: smaller times are relative to now

Value = float | int | str | bool | bytes


@dataclasses.dataclass(frozen=True, slots=True)
class SenmlRecord:
    """One resolved record: full path, value, when (ms; None = now), and where it was (for errors)."""

    path: Path
    value: Value
    timestamp_ms: int | None
    where: str


def _time_ms(seconds: float, now_ms: int) -> int:
    return round(seconds * 1000) + (now_ms if abs(seconds) < _RELATIVE_LIMIT_S else 0)


def _resolve(fmt: str, records: object, now_ms: int, *, text_bytes: bool) -> list[SenmlRecord]:
    if not isinstance(records, list):
        raise ContentError(fmt, "byte 0", f"a SenML pack is an array of records (got {type(records).__name__})")
    base_name, base_time = "", 0.0
    out = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ContentError(fmt, f"record {index}", f"a record is a map (got {type(record).__name__})")
        fields = {(_CBOR_LABELS.get(k, k) if not text_bytes else k): v for k, v in record.items()}
        if "bn" in fields:
            if not isinstance(fields["bn"], str):
                raise ContentError(fmt, f"record {index} 'bn'", "a base name is a string")
            base_name = fields["bn"]
        if "bt" in fields:
            bt = fields["bt"]
            if isinstance(bt, bool) or not isinstance(bt, int | float) or not math.isfinite(bt):
                raise ContentError(fmt, f"record {index} 'bt'", f"a base time is a number (got {bt!r})")
            base_time = float(bt)
        present = [f for f in _VALUE_FIELDS if f in fields]
        if not present:
            if set(fields) <= {"bn", "bt", "bu", "bver"}:
                continue  # a record of base fields only
            raise ContentError(fmt, f"record {index}", "no value (v, vs, vb, vd or vlo)")
        if len(present) > 1:
            raise ContentError(fmt, f"record {index}", f"more than one value field: {', '.join(present)}")
        name = fields.get("n", "")
        if not isinstance(name, str):
            raise ContentError(fmt, f"record {index} 'n'", f"a name is a string (got {name!r})")
        try:
            path = parse_path(base_name + name)
        except ValueError as exc:
            raise ContentError(fmt, f"record {index} 'n'", str(exc)) from None
        t = fields.get("t", 0)
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
            raise ContentError(fmt, f"record {index} 't'", f"a time is a number (got {t!r})")
        field = present[0]
        value = fields[field]
        where = f"record {index} {field!r}"
        value = _value(fmt, where, field, value, text_bytes=text_bytes)
        stamp = _time_ms(base_time + t, now_ms) if ("t" in fields or base_time) else None
        out.append(SenmlRecord(path, value, stamp, where))
    return out


def _value(fmt: str, where: str, field: str, value: object, *, text_bytes: bool) -> Value:
    if field == "v":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ContentError(fmt, where, f"'v' is a number (got {value!r})")
        return value
    if field == "vb":
        if not isinstance(value, bool):
            raise ContentError(fmt, where, f"'vb' is true or false (got {value!r})")
        return value
    if field == "vd":
        if text_bytes:
            if not isinstance(value, str):
                raise ContentError(fmt, where, f"'vd' is base64url text (got {value!r})")
            try:
                return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            except ValueError as exc:
                raise ContentError(fmt, where, f"'vd' is not base64url: {exc}") from None
        if not isinstance(value, bytes):
            raise ContentError(fmt, where, f"'vd' is a byte string (got {type(value).__name__})")
        return value
    if not isinstance(value, str):  # vs, vlo
        raise ContentError(fmt, where, f"{field!r} is a string (got {value!r})")
    return value


def decode_senml_json(data: bytes, now_ms: int) -> list[SenmlRecord]:
    """Records of a SenML JSON pack; ContentError naming the byte or record and field."""
    try:
        records = json.loads(data)
    except UnicodeDecodeError as exc:
        raise ContentError("SenML JSON", f"byte {exc.start}", "not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ContentError("SenML JSON", f"byte {exc.pos}", exc.msg) from None
    return _resolve("SenML JSON", records, now_ms, text_bytes=True)


def decode_senml_cbor(data: bytes, now_ms: int) -> list[SenmlRecord]:
    """Records of a SenML CBOR pack; ContentError naming the byte or record and field."""
    stream = io.BytesIO(data)
    try:
        records = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, EOFError) as exc:
        raise ContentError("SenML CBOR", f"byte {stream.tell()}", f"not CBOR: {exc}") from None
    if stream.tell() != len(data):
        raise ContentError("SenML CBOR", f"byte {stream.tell()}", f"{len(data) - stream.tell()} bytes after the pack")
    return _resolve("SenML CBOR", records, now_ms, text_bytes=False)


def _record(path: Path, value: Value, labels: Mapping[str, object]) -> dict[object, object]:
    field = "vb" if isinstance(value, bool) else "v" if isinstance(value, int | float) else "vs"
    field = "vd" if isinstance(value, bytes) else field
    return {labels["n"]: "/" + "/".join(str(p) for p in path), labels[field]: value}


def encode_senml_json(values: Sequence[tuple[Path, Value]]) -> bytes:
    """Values as a SenML JSON pack (full names, no base fields)."""
    records = []
    for path, value in values:
        rec = _record(path, value, {k: k for k in _JSON_LABELS})
        if isinstance(value, bytes):
            rec["vd"] = base64.urlsafe_b64encode(value).rstrip(b"=").decode()
        records.append(rec)
    return json.dumps(records, separators=(",", ":")).encode()


def encode_senml_cbor(values: Sequence[tuple[Path, Value]]) -> bytes:
    """Values as a SenML CBOR pack (full names, no base fields)."""
    return cbor2.dumps([_record(path, value, _JSON_LABELS) for path, value in values])
