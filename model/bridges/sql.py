"""Config of the SQL source: parameterised queries polled with a watermark, rows mapped to metrics or MES events."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.bridges.common import BridgeBase, DatatypeName, sparkplug_id
from model.mes import EventName

__all__ = ["SqlBridgeConfig", "SqlMesMapping", "SqlMetric", "SqlQuery", "SqlWatermark"]

_IDENT = r"^[A-Za-z_][A-Za-z0-9_$#@ ]{0,127}$"
"""A column or table name; quoted by the dialect, so reserved words and mixed case are fine."""
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_PATH = re.compile(r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*){0,4}$")

Scalar = str | int | float | bool


class SqlWatermark(BaseModel):
    """What orders the rows and marks how far the source has read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(pattern=_IDENT, description="Column that grows: updated_at, a rowversion, an id.")
    kind: Literal["timestamp", "rowversion", "id"] = Field(
        default="timestamp",
        description="timestamp: rows updated later (a newer updated_at) come again as updates; rowversion: SQL "
        "Server's rowversion (binary(8)), likewise; id: an increasing id, rows are read once.",
    )


class SqlMetric(BaseModel):
    """One column of each row published as one metric of the query's device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Sparkplug metric name ('/' makes levels).")
    column: str = Field(pattern=_IDENT, description="Column holding the value.")
    datatype: DatatypeName = Field(default="Double", description="Sparkplug datatype of the metric.")
    unit: str | None = Field(default=None, description="Engineering unit.")


class SqlMesMapping(BaseModel):
    """Each row as one MES event published at QoS 1 on ``<path>/mes/<event>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: EventName = Field(description="MES event name (model/mes.py): work_order, quality_inspection, ...")
    path: str | None = Field(default=None, description="Equipment path of every row's event (acme/dallas/pack/line1).")
    path_column: str | None = Field(default=None, pattern=_IDENT, description="Column holding each row's path.")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Event field -> column. *_ms fields take timestamps (or epoch ms); list fields (bom, breaks, "
        "input_lots) take a JSON array column. timestamp_ms defaults to the query's time column.",
    )
    values: dict[str, Scalar] = Field(default_factory=dict, description="Event field -> a constant (action: release).")

    @model_validator(mode="after")
    def _one_path(self) -> Self:
        if (self.path is None) == (self.path_column is None):
            raise ValueError("give exactly one of path and path_column")
        if self.path is not None and not _PATH.match(self.path):
            raise ValueError(f"path {self.path!r} is not an equipment path (slugs a-z0-9_- joined by /, 1 to 5)")
        return self


class SqlQuery(BaseModel):
    """One polled query: a table (or view) or a SELECT, its row key, its watermark and its mapping.

    The query's name is the Sparkplug device that carries its metrics and its status
    (``Sql/RowsRead``, ``Sql/RowsRefused``, ``Sql/Watermark``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: sparkplug_id = Field(description="Query name: the Sparkplug device id, the watermark's key.")
    table: str | None = Field(default=None, pattern=_IDENT, description="Table or view to read.")
    schema_name: str | None = Field(default=None, pattern=_IDENT, description="Schema of the table (dbo, public).")
    query: str | None = Field(
        default=None,
        min_length=1,
        description="A SELECT without ORDER BY, with :name parameters from params; read as a subquery that the "
        "source filters by the watermark and orders.",
    )
    params: dict[str, Scalar] = Field(default_factory=dict, description="Values of the query's :name parameters.")
    key: list[str] = Field(min_length=1, description="Columns that identify a row (an order number, an id).")
    watermark: SqlWatermark = Field(description="The column that orders rows and marks progress.")
    time_column: str | None = Field(
        default=None,
        pattern=_IDENT,
        description="When each row happened (sample timestamps, the event's timestamp_ms); default the watermark "
        "column if it is a timestamp.",
    )
    interval_s: float = Field(default=5.0, gt=0, le=86_400, description="Poll interval; a full batch polls again.")
    batch_rows: int = Field(default=1000, ge=1, le=100_000, description="Rows read per round trip.")
    metrics: list[SqlMetric] = Field(default_factory=list, description="Columns published as metrics.")
    mes: SqlMesMapping | None = Field(default=None, description="Or: each row as one MES event.")

    @model_validator(mode="after")
    def _one_of_each(self) -> Self:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table and query")
        if bool(self.metrics) == (self.mes is not None):
            raise ValueError("give exactly one of metrics and mes")
        if self.time_column is None and self.watermark.kind != "timestamp":
            raise ValueError("time_column is needed when the watermark is not a timestamp")
        names = [metric.name for metric in self.metrics]
        if len(set(names)) != len(names) or any(name.startswith("Sql/") for name in names):
            raise ValueError("metric names must be unique and not start with Sql/ (the query's status)")
        return self

    @property
    def when_column(self) -> str:
        """The column giving each row's time."""
        return self.time_column or self.watermark.column


class SqlBridgeConfig(BridgeBase):
    """A SQL source: one database, polled queries."""

    kind: Literal["sql"] = Field(default="sql", description="Bridge kind.")
    url: str = Field(
        min_length=1,
        description="SQLAlchemy URL with an async driver: sqlite+aiosqlite:///erp.db, "
        "postgresql+psycopg://user:pw@host/db, mysql+asyncmy://user:pw@host/db, mssql+aioodbc://... "
        "(set the password through UNS_* env rather than the file).",
    )
    timezone: str = Field(
        default="UTC",
        min_length=1,
        description="IANA zone of timestamps stored without one (SQL Server datetime2, MySQL DATETIME).",
    )
    timeout_s: float = Field(default=10.0, gt=0, le=600, description="Deadline of one query round trip.")
    backoff_min_s: float = Field(default=1.0, gt=0, description="First retry delay after the database failed.")
    backoff_max_s: float = Field(default=60.0, gt=0, description="Retry delay cap.")
    queries: list[SqlQuery] = Field(min_length=1, description="The polled queries.")

    @property
    def url_safe(self) -> str:
        """The URL with its password masked, for logs and errors."""
        return _PASSWORD.sub(r"\1***@", self.url)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [query.name for query in self.queries]
        if len(set(names)) != len(names):
            raise ValueError("query names must be unique (each is a device and a watermark)")
        if self.backoff_min_s > self.backoff_max_s:
            raise ValueError("backoff_min_s must be <= backoff_max_s")
        return self
