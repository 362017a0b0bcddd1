"""The polling SELECT of one SQL query, built with SQLAlchemy Core so each dialect quotes and binds it right.

Rows are read in (watermark, key) order after a cursor, the last row emitted: ``wm > w OR (wm = w
AND key > k)`` (keyset pagination), so rows sharing a watermark value are neither skipped nor read
twice across batch boundaries. Two things are dialect-specific:

- a timestamp cursor is compared as microsecond windows (``wm >= w + 1us OR (w <= wm < w + 1us AND
  key > k)``): Python datetimes stop at microseconds and SQL Server's ``datetime2(7)`` has 100 ns, so
  a row at ``.1234567`` read back as ``.123456`` would match ``wm > w`` forever; on microsecond
  databases the window is the same as ``wm > w``, and the column stays usable by an index.
- SQL Server's rowversion is read only below ``MIN_ACTIVE_ROWVERSION()``: a transaction still open
  holds a lower rowversion than rows already committed, and would be skipped once it commits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
from collections.abc import Callable, Mapping, Sequence
from typing import TypeAlias

import sqlalchemy as sa

from model.bridges.sql import SqlQuery

__all__ = ["CursorValue", "RowCursor", "build_select", "decode_value", "encode_value", "query_columns"]

CursorValue: TypeAlias = int | str | float | bytes | decimal.Decimal | dt.datetime | dt.date
"""A watermark or key value as the driver returned it; bound back with the same Python type."""

_MICROSECOND = dt.timedelta(microseconds=1)


@dataclasses.dataclass(frozen=True, slots=True)
class RowCursor:
    """The last row emitted: its watermark and key values."""

    watermark: CursorValue
    key: tuple[CursorValue, ...]


def query_columns(query: SqlQuery) -> list[str]:
    """Every column the query reads, each once: key, watermark, time, then the mapping's."""
    names = [*query.key, query.watermark.column, query.when_column]
    names += [metric.column for metric in query.metrics]
    if query.mes is not None:
        names += list(query.mes.fields.values())
        if query.mes.path_column is not None:
            names.append(query.mes.path_column)
    return list(dict.fromkeys(names))


def _after(columns: Sequence[sa.ColumnElement[object]], values: Sequence[CursorValue]) -> sa.ColumnElement[bool]:
    """``columns > values`` in lexicographic order, spelt out (row-value comparison is not in every dialect)."""
    first, value = columns[0], values[0]
    if len(columns) == 1:
        return first > value
    return sa.or_(first > value, sa.and_(first == value, _after(columns[1:], values[1:])))


def build_select(query: SqlQuery, *, dialect: str, after: RowCursor | None) -> sa.Select[tuple[object, ...]]:
    """The next batch of ``query``'s rows after ``after`` (None: from the first row), for ``dialect``."""
    names = query_columns(query)
    columns: list[sa.ColumnClause[object]] = [sa.column(name) for name in names]
    source: sa.FromClause
    if query.table is not None:
        source = sa.table(query.table, *columns, schema=query.schema_name)
    else:
        text = sa.text(query.query or "").bindparams(**query.params) if query.params else sa.text(query.query or "")
        source = text.columns(*columns).subquery("q")
    mark = source.c[query.watermark.column]
    # key columns that break ties between rows sharing a watermark value (none when the key is the watermark)
    ties = [name for name in query.key if name != query.watermark.column]
    keys = [source.c[name] for name in ties]
    # a NULL watermark or key cannot be a cursor (NULL compares as unknown): such rows are not read
    select = sa.select(*(source.c[name] for name in names)).select_from(source)
    select = select.where(mark.is_not(None), *(key.is_not(None) for key in keys))
    if after is not None:
        if len(after.key) != len(query.key):
            raise ValueError(
                f"query {query.name}: saved cursor has {len(after.key)} key values, key has {len(query.key)}"
            )
        w = after.watermark
        tie = [value for name, value in zip(query.key, after.key, strict=True) if name != query.watermark.column]
        if isinstance(w, dt.datetime):
            nxt = w + _MICROSECOND
            later, same = mark >= nxt, [mark >= w, mark < nxt]
        else:
            later, same = mark > w, [mark == w]
        select = select.where(sa.or_(later, sa.and_(*same, _after(keys, tie))) if keys else later)
    if dialect == "mssql" and query.watermark.kind == "rowversion":
        select = select.where(mark < sa.func.min_active_rowversion())
    return select.order_by(mark, *keys).limit(query.batch_rows)


def encode_value(value: object) -> dict[str, str | int | float]:
    """A cursor value as JSON that ``decode_value`` turns back into the same Python type."""
    if isinstance(value, bool):
        raise TypeError("a boolean cannot order rows")
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, float):
        return {"float": value}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    raise TypeError(f"{type(value).__name__} cannot be a watermark or key value")


def decode_value(data: Mapping[str, object]) -> CursorValue:
    """The value ``encode_value`` wrote."""
    ((kind, raw),) = data.items()
    decoders: dict[str, Callable[[object], CursorValue]] = {
        "int": lambda v: int(str(v)),
        "float": lambda v: float(str(v)),
        "str": str,
        "bytes": lambda v: bytes.fromhex(str(v)),
        "decimal": lambda v: decimal.Decimal(str(v)),
        "datetime": lambda v: dt.datetime.fromisoformat(str(v)),
        "date": lambda v: dt.date.fromisoformat(str(v)),
    }
    decoder = decoders.get(kind)
    if decoder is None:
        raise ValueError(f"unknown cursor value kind {kind!r}")
    return decoder(raw)
