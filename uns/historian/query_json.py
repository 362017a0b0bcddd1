"""Rows of history answers as JSON text straight from Arrow columns, byte for byte what orjson writes for rows.

The row path (``query_api.run_endpoint`` then ``document_bytes``) builds one Python object per row
and cell (a dataclass, a tz-aware datetime, a dict): for 86,400 raw samples that is most of the
answer's time. Here each column becomes its JSON text once, column-wise (Arrow compute; orjson
over a whole column of numbers, cut at its commas), and the rows are joined element-wise. The
text is the same as orjson's: numbers and strings are written by orjson itself, times by Arrow's
``strftime`` plus the fraction and the offset orjson writes for that zone. Whatever this writer
does not cover exactly (a time before 1970, an offset that changes within an hour, a null where a
number is expected) raises ``NotColumnar`` and the caller answers by the row path.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from uns.historian.queries import AggregateTable, AsOfTable, RawTable
from uns.query.timespec import instant
from uns.query.values import BOOLEAN_TYPES, INTEGER_TYPES, Value, typed_value

__all__ = ["NotColumnar", "asof_rows", "bucket_rows", "raw_rows"]

_TEXT = pa.large_string()
_QUARTER_MS = 900_000  # zones change offset on quarter hours of UTC (a few historic ones did not)
_INT64_LIMIT = 2.0**63
_DATETIME_CHARS = 19  # 2026-11-24T08:00:00
_DAY_S = 86_400
_EPOCH_DAY = date(1970, 1, 1)


class NotColumnar(Exception):
    """These rows hold something the columnar writer does not write exactly; answer them row by row."""


def _lit(text: str) -> pa.Scalar:
    return pa.scalar(text, _TEXT)


def _column(table: pa.Table, index: int) -> pa.Array:
    return table.column(index).combine_chunks()


def _join(parts: Sequence[pa.Array | pa.Scalar]) -> pa.Array:
    joined: pa.Array = pc.binary_join_element_wise(*parts, _lit(""))
    return joined


def _cut(listed: bytes, count: int) -> pa.Array:
    """The text orjson writes for a list of numbers and nulls (no commas inside) cut into one string per element."""
    if count == 0:
        return pa.array([], _TEXT)
    # Arrow's split of the bytes (binary, so no UTF-8 checks; orjson writes ASCII here, viewed as text as it is):
    # no Python object per element, which bytes.split and a list of bytes made (2-3x the time)
    whole = pa.array([listed[1:-1]], pa.large_binary())
    parts = pc.split_pattern(whole, b",").flatten()
    if len(parts) != count:
        raise NotColumnar("a number was written with a comma")
    text: pa.Array = parts.view(_TEXT)
    return text


def _floats(values: pa.Array) -> pa.Array:
    """Doubles as orjson writes Python floats (NaN and infinities as null), nulls as null."""
    return _cut(orjson.dumps(values.to_pylist()), len(values))


def _booleans(values: pa.Array) -> pa.Array:
    """Numbers as ``bool(value)`` writes them (nonzero, NaN included, is true), nulls as null."""
    truth = pc.not_equal(values, 0) if pa.types.is_floating(values.type) else values
    return pc.fill_null(pc.if_else(truth, _lit("true"), _lit("false")), _lit("null"))


def _integers(values: pa.Array) -> pa.Array:
    """Integral doubles as ``int(value)`` writes them; NaN, infinities and 2^63 up are not covered."""
    valid = pc.drop_null(values)
    if len(valid) and not (pc.all(pc.is_finite(valid)).as_py() and pc.max(pc.abs(valid)).as_py() < _INT64_LIMIT):
        raise NotColumnar("an integer series holds a non-finite or 64-bit-overflowing number")
    whole = pc.cast(values, pa.int64(), safe=False)  # truncates toward zero, like int()
    return pc.fill_null(pc.cast(whole, _TEXT), _lit("null"))


def _numbers(values: pa.Array, datatype: str | None) -> pa.Array:
    """Stored doubles typed by the series' datatype, as ``query_buckets._number`` types them."""
    if datatype in BOOLEAN_TYPES:
        return _booleans(values)
    if datatype in INTEGER_TYPES:
        return _integers(values)
    return _floats(values)


def _mapped(values: pa.Array, convert: Callable[[object], Value]) -> pa.Array:
    """Each distinct non-null value converted and written by orjson once; nulls stay null."""
    encoded = pc.dictionary_encode(values)
    texts = [orjson.dumps(convert(item)).decode() for item in encoded.dictionary.to_pylist()]
    mapped: pa.Array = pa.array(texts, _TEXT).take(encoded.indices)
    return mapped


def _strings(values: pa.Array) -> pa.Array:
    """Strings as orjson writes them, nulls as null."""
    return pc.fill_null(_mapped(values, str), _lit("null"))


def _values(number: pa.Array, text: pa.Array, json_text: pa.Array, datatype: str | None) -> pa.Array:
    """Sample values as ``uns.query.values.typed_value`` types them, column-wise."""
    if datatype in BOOLEAN_TYPES:
        base = _booleans(number)
    elif datatype in INTEGER_TYPES and text.null_count < len(text):  # exact digits beyond 2^53 win
        digits = _mapped(text, lambda item: typed_value(datatype, None, str(item), None))
        unwritten = pc.if_else(pc.is_valid(text), pa.scalar(None, pa.float64()), number)
        base = pc.if_else(pc.is_valid(text), digits, _integers(unwritten))
    elif datatype in INTEGER_TYPES:
        base = _integers(number)
    else:
        base = pc.if_else(pc.is_valid(number), _floats(number), _strings(text))
    if json_text.null_count < len(json_text):  # arrays and objects, re-written as orjson writes them parsed
        parsed = _mapped(json_text, lambda item: typed_value(None, None, None, str(item)))
        base = pc.if_else(pc.is_valid(json_text), parsed, base)
    return base


def _offset_ms(epoch_ms: int, tz: ZoneInfo) -> int:
    offset = instant(epoch_ms, tz).utcoffset()
    return 0 if offset is None else offset // timedelta(milliseconds=1)


def _suffix(epoch_ms: int, tz: ZoneInfo) -> str:
    """What orjson writes after the seconds of a whole-second time in ``tz``: its offset."""
    return orjson.dumps(instant(epoch_ms - epoch_ms % 1000, tz)).decode()[1:-1][_DATETIME_CHARS:]


def _offsets(epoch_ms: pa.Array, tz: ZoneInfo, after: str = "") -> tuple[pa.Array, pa.Array | pa.Scalar]:
    """Each time's UTC offset in ms, and the text orjson writes for it, its closing quote and ``after``.

    The offset is looked up (zoneinfo) once per quarter hour of UTC the data touches, at both its
    ends; a quarter in which it changes (Liberia's 1972 switch at 00:44:30 UTC) is not covered.
    """
    if tz.key == "UTC":
        return pc.multiply(epoch_ms, 0), _lit(f'{_suffix(0, tz)}"{after}')
    quarters = pc.divide(epoch_ms, _QUARTER_MS)
    unique = pc.unique(quarters)
    per_quarter: list[int] = []
    suffixes: dict[int, str] = {}
    for quarter in unique.to_pylist():
        begin = quarter * _QUARTER_MS
        first, last = _offset_ms(begin, tz), _offset_ms(begin + _QUARTER_MS - 1, tz)
        if first != last:
            raise NotColumnar(f"the offset of {tz.key} changes within a quarter hour")
        per_quarter.append(first)
        suffixes.setdefault(first, f'{_suffix(begin, tz)}"{after}')
    offsets = pa.array(per_quarter, pa.int64()).take(pc.index_in(quarters, value_set=unique))
    keys = pa.array(list(suffixes), pa.int64())
    texts = pa.array(list(suffixes.values()), _TEXT).take(pc.index_in(offsets, value_set=keys))
    return offsets, texts


def _times(epoch_ms: pa.Array, tz: ZoneInfo, before: str = "", after: str = "") -> list[pa.Array | pa.Scalar]:
    """Milliseconds since 1970 as quoted ISO times in ``tz``, as orjson writes ``timespec.instant``'s datetimes.

    Returned as parts to join into the rows, with ``before`` and ``after`` folded into the first and
    last: the date (one text per day), the clock (a lookup in the 86,400 clock times of a day), the
    fraction (a lookup in 1,000) and the offset. Lookups (``take``) copy bytes; formatting each
    time (Arrow's cast to text, then slicing and padding) cost 3x more.
    """
    if epoch_ms.null_count or (len(epoch_ms) and pc.min(epoch_ms).as_py() < 0):
        raise NotColumnar("a time before 1970 or missing")
    offsets, suffix = _offsets(epoch_ms, tz, after)
    local = pc.add(epoch_ms, offsets)
    if len(local) and pc.min(local).as_py() < 0:
        raise NotColumnar("a local time before 1970")
    seconds = pc.divide(local, 1000)
    days = pc.divide(seconds, _DAY_S)
    unique = pc.unique(days)
    texts = [f'{before}"{(_EPOCH_DAY + timedelta(days=day)).isoformat()}T' for day in unique.to_pylist()]
    parts: list[pa.Array | pa.Scalar] = [
        pa.array(texts, _TEXT).take(pc.index_in(days, value_set=unique)),
        _clock_texts().take(pc.subtract(seconds, pc.multiply(days, _DAY_S))),
    ]
    millis = pc.subtract(local, pc.multiply(seconds, 1000))
    if len(millis) and pc.max(millis).as_py() > 0:
        parts.append(_fraction_texts().take(millis))
    parts.append(suffix)
    return parts


@functools.cache
def _clock_texts() -> pa.Array:
    """``HH:MM:SS`` of every second of a day, by the second."""
    return pa.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(_DAY_S)], _TEXT)


@functools.cache
def _fraction_texts() -> pa.Array:
    """What orjson writes for the microseconds of a whole millisecond, by the millisecond (none for 0)."""
    return pa.array(["", *(f".{ms:03d}000" for ms in range(1, 1000))], _TEXT)


def _key(name: str) -> str:
    return orjson.dumps(name).decode()


def _rows(parts: Sequence[pa.Array | pa.Scalar], count: int) -> bytes:
    """The comma-separated rows, each the element-wise concatenation of ``parts`` (the last ends with ``},``)."""
    if count == 0:
        return b""
    rows = _join(parts)
    if rows.null_count:
        raise NotColumnar("a cell could not be written")
    _, offset_buffer, data = rows.buffers()
    offsets = pa.Array.from_buffers(pa.int64(), len(rows) + 1, [None, offset_buffer], offset=rows.offset)
    begin, end = offsets[0].as_py(), offsets[-1].as_py()
    written: bytes = data.slice(begin, end - begin - 1).to_pybytes()  # without the last row's trailing comma
    return written


def raw_rows(raw: RawTable, tz: ZoneInfo, limit: int) -> bytes:
    """The ``rows`` of a raw answer (at most ``limit``): ``{"ts", "value", "quality", "historical"}`` each."""
    table = raw.table.slice(0, limit)
    ts, number, text, json_text, quality, historical = (_column(table, i) for i in range(6))
    parts = [
        *_times(ts, tz, before='{"ts":', after=',"value":'),
        _values(number, text, json_text, raw.datatype),
        _lit(',"quality":'),
        _strings(quality),
        _lit(',"historical":'),
        _booleans(historical),
        _lit("},"),
    ]
    return _rows(parts, len(table))


def asof_rows(asof: AsOfTable, tz: ZoneInfo, limit: int) -> bytes:
    """The ``rows`` of an as-of answer: ``{"ts", "value", "quality", <context topic>...}`` each."""
    if any(name in ("ts", "value", "quality") for name, _ in asof.contexts):
        raise NotColumnar("a context named like a row key")
    table = asof.table.slice(0, limit)
    ts, number, text, json_text, quality = (_column(table, i) for i in range(5))
    parts = [
        *_times(ts, tz, before='{"ts":', after=',"value":'),
        _values(number, text, json_text, asof.datatype),
        _lit(',"quality":'),
        _strings(quality),
    ]
    for index, (name, datatype) in enumerate(asof.contexts):
        first = 5 + 3 * index
        context = _values(_column(table, first), _column(table, first + 1), _column(table, first + 2), datatype)
        parts += [_lit(f",{_key(name)}:"), context]
    parts.append(_lit("},"))
    return _rows(parts, len(table))


def bucket_rows(buckets: AggregateTable, tz: ZoneInfo) -> bytes:
    """The ``rows`` of an aggregate answer, filled as ``query_buckets.assemble_buckets`` fills them."""
    table = buckets.table
    counts = _column(table, 2)
    full = pc.fill_null(pc.not_equal(counts, 0), False)
    if buckets.fill == "none":
        table = table.filter(full)
        counts, full = _column(table, 2), pc.fill_null(pc.not_equal(_column(table, 2), 0), False)
    starts, ends = _column(table, 0), _column(table, 1)
    if pc.any(pc.and_(full, pc.is_null(_column(table, 7)))).as_py():
        raise NotColumnar("a bucket with samples but no last value")
    cells = _BucketCells(table, full, buckets)
    parts = [*_times(starts, tz, before='{"start":', after=',"end":'), *_times(ends, tz)]
    for name in dict.fromkeys(buckets.names):
        parts += [_lit(f",{_key(name)}:"), cells.cell(name)]
    parts.append(pc.if_else(full, _lit(',"filled":false},'), _lit(',"filled":true},')))  # one part: joins cost by part
    return _rows(parts, len(table))


class _BucketCells:
    """The text of each aggregate's cells, written only for the aggregates asked for.

    An empty bucket has no row in the aggregate the table is joined from, so all its values are
    null: with ``fill`` none or null, the text of the values as they are (``null``, a count of 0)
    is already what the row path writes. Only ``previous`` (or a count of 0, which the SQL does not
    give) chooses between the bucket's text and a carried value's per row.
    """

    _COLUMNS: typing.ClassVar[dict[str, int]] = {"avg": 3, "min": 4, "max": 5, "first": 6, "last": 7}

    def __init__(self, table: pa.Table, full: pa.Array, buckets: AggregateTable) -> None:
        self._table, self._full, self._datatype = table, full, buckets.datatype
        counts = _column(table, 2)
        self._direct = buckets.fill != "previous" and pc.sum(pc.equal(counts, 0)).as_py() in (None, 0)
        self._empty_value: pa.Array | pa.Scalar = _lit("null")
        self._empty_avg: pa.Array | pa.Scalar = _lit("null")
        if buckets.fill == "previous":  # empty buckets carry the last value before them
            carried = pc.fill_null_forward(pc.if_else(full, _column(table, 7), pa.scalar(None, pa.float64())))
            carried = pc.fill_null(carried, pa.scalar(buckets.before, pa.float64()))
            self._empty_value = _numbers(carried, self._datatype)
            self._empty_avg = _floats(_as_float(carried, self._datatype))

    def cell(self, name: str) -> pa.Array:
        if name == "count":
            written = pc.cast(pc.fill_null(_column(self._table, 2), 0), _TEXT)
            return written if self._direct else pc.if_else(self._full, written, _lit("0"))
        values = _column(self._table, self._COLUMNS[name])
        if name == "avg":
            written, empty = _floats(values), self._empty_avg
        else:
            written, empty = _numbers(values, self._datatype), self._empty_value
        return written if self._direct else pc.if_else(self._full, written, empty)


def _as_float(carried: pa.Array, datatype: str | None) -> pa.Array:
    """``float()`` of the carried value as typed: a boolean as 1.0/0.0, an integer truncated."""
    if datatype in BOOLEAN_TYPES:
        return pc.if_else(pc.not_equal(carried, 0), 1.0, 0.0)
    if datatype in INTEGER_TYPES:
        return pc.trunc(carried)
    return carried
