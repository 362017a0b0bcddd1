"""Rows to samples or MES events (pure): each value checked, a row that does not map refused naming its field."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import re
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from bridges.source import Sample
from bridges.sql.statement import encode_value
from model.bridges.sql import SqlMesMapping, SqlQuery
from model.envelope import Quality
from model.mes import EVENT_MODELS
from uns.clock import nearest_epoch_ms
from uns.sparkplug import DataType, MetricValue
from uns.sparkplug.values import encode_scalar

__all__ = ["RowRefused", "event_id", "mes_event", "metric_samples", "row_key", "to_ms"]

Row = Mapping[str, object]

_PATH = re.compile(r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*){0,4}$")
_NOT_IN_ID = re.compile(r"[\x00-\x1f/+#]")
_DATATYPES = {datatype.name: datatype for datatype in DataType}
_LIST_FIELDS = frozenset({"bom", "breaks", "input_lots"})
_INTS = frozenset(
    {DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64,
     DataType.UInt8, DataType.UInt16, DataType.UInt32, DataType.UInt64}
)  # fmt: skip


class RowRefused(ValueError):
    """A row that does not map: the field (and column) at fault and why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def row_key(query: SqlQuery, row: Row) -> str:
    """The row's key as text: ``order_no=4711`` (``a=1,b=2`` for several columns)."""
    return ",".join(f"{name}={row.get(name)!s}" for name in query.key)


def to_ms(value: object, zone: ZoneInfo) -> int:
    """A database time as ms since 1970 UTC: a datetime (naive ones are in ``zone``), ISO text or epoch ms.

    Raises:
        ValueError: not a time.
    """
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return nearest_epoch_ms(value)
    if isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool):
        return int(value)
    raise ValueError(f"{type(value).__name__} is not a time")


def _scalar(datatype: DataType, value: object, zone: ZoneInfo) -> MetricValue:
    """``value`` as the Python value of ``datatype``; raises ValueError saying why not."""
    if isinstance(value, decimal.Decimal):
        value = int(value) if datatype in _INTS and value == value.to_integral_value() else float(value)
    if datatype is DataType.DateTime:
        return to_ms(value, zone)
    if datatype is DataType.Boolean and isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        value = bool(value)  # MySQL TINYINT(1), SQLite
    if datatype in (DataType.Float, DataType.Double) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    encode_scalar(datatype, value)  # type and range
    assert isinstance(value, int | float | bool | str)  # noqa: S101  (encode_scalar took it)
    return value


def metric_samples(query: SqlQuery, row: Row, zone: ZoneInfo) -> list[Sample]:
    """One sample per metric of the row, stamped with the row's time; a NULL value is a bad-quality sample."""
    try:
        when = to_ms(row.get(query.when_column), zone)
    except ValueError as exc:
        raise RowRefused(query.when_column, str(exc)) from None
    samples = []
    for metric in query.metrics:
        value = row.get(metric.column)
        if value is None:
            samples.append(Sample(name=metric.name, value=None, timestamp_ms=when, quality=Quality.bad))
            continue
        try:
            samples.append(Sample(name=metric.name, value=_scalar(_DATATYPES[metric.datatype], value, zone),
                                  timestamp_ms=when))  # fmt: skip
        except ValueError as exc:
            raise RowRefused(metric.column, f"{metric.datatype} metric {metric.name}: {exc}") from None
    return samples


def event_id(connector: str, query: str, key: str, version: object) -> str:
    """``sql:<connector>:<query>:<key>:<version hash>``: the same row version always gives the same id.

    An update (a new watermark value) gives a new id, so the MES stores it; a row read again after a
    crash gives the same id, so the MES stores it once.
    """
    digest = hashlib.blake2b(json.dumps(encode_value(version)).encode(), digest_size=6).hexdigest()
    text = _NOT_IN_ID.sub("_", f"sql:{connector}:{query}:{key}:{digest}")
    if len(text) <= 128:
        return text
    whole = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
    return f"sql:{connector[:40]}:{query[:40]}:{whole}"


def _event_value(field: str, value: object, zone: ZoneInfo) -> object:
    if field.endswith("_ms"):
        return to_ms(value, zone)
    if field in _LIST_FIELDS:
        items = json.loads(value) if isinstance(value, str | bytes) else value
        if isinstance(items, list):  # times inside (a break's start_ms) are read like the row's own
            return [_times_in(item, zone) for item in items]
        return items
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _times_in(item: object, zone: ZoneInfo) -> object:
    if not isinstance(item, dict):
        return item
    return {k: to_ms(v, zone) if k.endswith("_ms") and isinstance(v, str) else v for k, v in item.items()}


def _path(mes: SqlMesMapping, row: Row) -> str:
    if mes.path is not None:
        return mes.path
    column = mes.path_column or ""
    value = row.get(column)
    if not isinstance(value, str) or not _PATH.match(value):
        raise RowRefused(column, f"{value!r} is not an equipment path (slugs a-z0-9_- joined by /, 1 to 5)")
    return value


def mes_event(connector: str, query: SqlQuery, row: Row, zone: ZoneInfo) -> tuple[str, bytes]:
    """The row as ``(topic, JSON body)`` of its MES event, validated by the event's model."""
    mes = query.mes
    if mes is None:
        raise ValueError(f"query {query.name} maps to metrics, not MES events")
    path = _path(mes, row)
    body: dict[str, object] = dict(mes.values)
    for field, column in mes.fields.items():
        value = row.get(column)
        if value is None:
            continue  # a required field then fails validation, named
        try:
            body[field] = _event_value(field, value, zone)
        except ValueError as exc:
            raise RowRefused(f"{field} (column {column})", str(exc)) from None
    if "timestamp_ms" not in body:
        try:
            body["timestamp_ms"] = to_ms(row.get(query.when_column), zone)
        except ValueError as exc:
            raise RowRefused(f"timestamp_ms (column {query.when_column})", str(exc)) from None
    body["event_id"] = event_id(connector, query.name, row_key(query, row), row.get(query.watermark.column))
    body.setdefault("source", f"sql:{connector}")
    try:
        event = EVENT_MODELS[mes.event].model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        top = str(first["loc"][0]) if first["loc"] else ""
        if top in mes.fields:
            field += f" (column {mes.fields[top]})"
        raise RowRefused(field, first["msg"]) from None
    return f"{path}/mes/{mes.event}", event.model_dump_json(exclude_none=True).encode()
