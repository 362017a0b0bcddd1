"""Sink configs: the UNS out to other stores, one model per kind, discriminated on ``kind`` like bridges."""

from __future__ import annotations

import re
import urllib.parse
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from model.topic import SLUG_PATTERN

__all__ = ["PostgresSinkConfig", "SinkBase", "SinkConfig", "redact_dsn"]

_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"


def _check_filter(value: str) -> str:
    levels = value.split("/")
    for index, level in enumerate(levels):
        if ("#" in level and (level != "#" or index != len(levels) - 1)) or ("+" in level and level != "+"):
            raise ValueError(f"{value!r} is not an MQTT topic filter ('+' a whole level, '#' the whole last one)")
    if value.startswith("$share/"):
        raise ValueError("give the share group in shared_group, not in the filter")
    return value


def _check_dsn(value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("must be a postgresql://user:password@host:port/database URL")
    return value


def redact_dsn(dsn: str) -> str:
    """``dsn`` without its password, for logs, health and the ready line."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", dsn)


class SinkBase(BaseModel):
    """Fields every sink kind has: what it reads from the UNS, how it batches, retries and reports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=SLUG_PATTERN,
        description="Sink name: `uns sink <name>`, logs, dead letters, the health topic "
        "<enterprise>/hub/sinks/<name>/health and the default MQTT client id uns-sink-<name>.",
    )
    enabled: bool = Field(default=True, description="false = keep the config but do not run it (in `uns up`).")
    topics: list[Annotated[str, AfterValidator(_check_filter)]] = Field(
        default_factory=list,
        description="MQTT topic filters to store; empty means <enterprise>/# (every data, kpi and mes topic). "
        "Other class words (cmd) and the hub's own topics are never stored.",
    )
    shared_group: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Subscribe as $share/<shared_group>/<filter>: several sink processes (each with its own "
        "client_id) split one stream, each message going to one of them.",
    )
    client_id: str | None = Field(
        default=None,
        min_length=1,
        description="MQTT client id of the sink's persistent session (default uns-sink-<name>); "
        "each process of a shared group needs its own (flag --client-id).",
    )
    batch_rows: int = Field(default=10_000, ge=1, le=1_000_000, description="Rows per committed batch at most.")
    flush_interval_s: float = Field(
        default=0.5, gt=0, le=60, description="Longest a received sample waits before its batch is written, seconds."
    )
    max_pending_rows: int = Field(
        default=100_000,
        ge=1,
        description="Rows held in memory while a write runs or the database is down; beyond it the sink stops "
        "reading and the broker holds the rest in the sink's session (back-pressure).",
    )
    max_future_s: float = Field(
        default=300.0, gt=0, description="A sample timestamped later than now plus this is dead-lettered, seconds."
    )
    retry_min_s: float = Field(
        default=0.5, gt=0, description="First wait before retrying a write to a database that is down, seconds."
    )
    retry_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait between retries (the wait doubles up to it, jittered), seconds."
    )
    health_interval_s: float = Field(
        default=5.0, gt=0, description="How often the sink publishes <enterprise>/hub/sinks/<name>/health, seconds."
    )

    @property
    def mqtt_client_id(self) -> str:
        """The client id of the sink's persistent session."""
        return self.client_id or f"uns-sink-{self.name}"


class PostgresSinkConfig(SinkBase):
    """The PostgreSQL / TimescaleDB historian sink: every sample in a time-partitioned table."""

    kind: Literal["postgres"] = Field(description="postgres: PostgreSQL 12+ (TimescaleDB used when installed).")
    dsn: Annotated[str, AfterValidator(_check_dsn)] = Field(
        description="postgresql://user:password@host:port/database (libpq URL; ?sslmode=require etc. allowed). "
        "The user needs CREATE on the database the first time (schema and tables), then INSERT and SELECT."
    )
    db_schema: str = Field(
        default="uns", pattern=_IDENTIFIER, description="PostgreSQL schema holding the sink's tables."
    )
    partition: Literal["day", "week", "month"] = Field(
        default="day", description="Time range of one partition of the samples table (or TimescaleDB chunk)."
    )
    partitions_ahead: int = Field(
        default=2, ge=0, le=60, description="Partitions created ahead of the current one, so writes never wait on DDL."
    )
    timescaledb: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="auto: a hypertable with compression when the timescaledb extension is available, plain "
        "declarative partitioning otherwise; on: require it; off: never use it.",
    )
    compress_after_days: float = Field(
        default=7.0, gt=0, description="TimescaleDB only: chunks older than this many days are compressed."
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Longest a connection attempt to the database may take, seconds."
    )


SinkConfig = Annotated[PostgresSinkConfig, Field(discriminator="kind")]
"""Any sink's config; ``kind`` picks the model (InfluxDB, SQL insert and REST sinks join this union)."""
