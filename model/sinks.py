"""Sink configs: the UNS out to other stores, one model per kind, discriminated on ``kind`` like bridges."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from model.bridges.amqp import AMQP_NAME, check_amqp_url, redact_amqp_url
from model.bridges.http import BasicAuth, BearerAuth
from model.topic import SLUG_PATTERN

__all__ = [
    "AmqpSinkConfig",
    "DeadLetterFileSink",
    "InfluxSinkConfig",
    "PostgresSinkConfig",
    "RestRoute",
    "RestSinkConfig",
    "SinkBase",
    "SinkConfig",
    "SqlInsertSinkConfig",
    "SqlInsertTable",
    "redact_dsn",
]

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
    skip_transient: bool = Field(
        default=True,
        description="Leave out samples flagged transient (a Sparkplug is_transient metric: live only, not to be "
        "historized), counted in the health's transient_skipped. true for the time-series stores (postgres, "
        "influxdb), which are historians; false for the forwarders (rest, sql_insert, amqp), which pass the "
        "flag on.",
    )

    @property
    def mqtt_client_id(self) -> str:
        """The client id of the sink's persistent session."""
        return self.client_id or f"uns-sink-{self.name}"


class DeadLetterFileSink(SinkBase):
    """A sink that keeps its dead letters in a local SQLite file (REST, SQL insert, AMQP): the forwarders."""

    skip_transient: bool = Field(
        default=False,
        description="Leave out samples flagged transient (a Sparkplug is_transient metric: live only, not to be "
        "historized), counted in the health's transient_skipped. false for the forwarders (rest, sql_insert, "
        "amqp): they hand values on to another system, the flag with them; true for the time-series stores.",
    )

    dead_letters_path: Path | None = Field(
        default=None,
        description="SQLite file of the sink's dead letters (topic, field, reason, payload); "
        "default data/sinks/<name>.dead-letters.sqlite under the working directory.",
    )

    @property
    def dead_letters_file(self) -> Path:
        """Where the dead letters are kept."""
        return self.dead_letters_path or Path("data") / "sinks" / f"{self.name}.dead-letters.sqlite"


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


def _check_url(value: str) -> str:
    if urllib.parse.urlsplit(value).scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL (placeholders like ${body.order_id} allowed)")
    return value


_JsonTemplate = dict[str, object] | list[object] | str | int | float | bool | None


class RestRoute(BaseModel):
    """Where and how one kind of message is sent: the first route whose ``match`` filter fits a topic wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: Annotated[str, AfterValidator(_check_filter)] = Field(
        default="#", description="MQTT topic filter choosing the messages of this route (e.g. +/+/+/+/mes/complete)."
    )
    method: Literal["POST", "PUT", "PATCH"] = Field(default="POST", description="HTTP method.")
    url: Annotated[str, AfterValidator(_check_url)] = Field(
        description="Target URL; ${...} placeholders are filled from the message and percent-encoded."
    )
    body: _JsonTemplate = Field(
        default=None,
        description="JSON body template: every string's ${name} placeholders are filled from the message "
        "(a string that is one placeholder keeps the value's JSON type); null sends the message's own JSON body. "
        "Names: topic, path, class, name, timestamp_ms, timestamp, key, sink, body.<field>[.<field>|.<index>]; "
        "a trailing ? (${body.reason?}) gives null when missing, else a missing name refuses the message.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra headers of this route (values may hold ${...} placeholders)."
    )
    idempotency_key: str = Field(
        default="${key}",
        description="Value of the idempotency header: ${key} is the hub's key of the message (an MES event's "
        "hash of topic and body, a sample's of topic, time and value), stable across re-deliveries.",
    )


class RestSinkConfig(DeadLetterFileSink):
    """REST/webhook out: UNS messages (MES events, KPIs, alarms) sent to an external MES or ERP over HTTP."""

    kind: Literal["rest"] = Field(description="rest: HTTP requests with templated bodies.")
    routes: list[RestRoute] = Field(
        min_length=1, description="Where each message goes; a message no route matches is acknowledged and skipped."
    )
    auth: Annotated[BasicAuth | BearerAuth, Field(discriminator="kind")] | None = Field(
        default=None, description="HTTP basic or bearer authentication of every request."
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Headers sent with every request.")
    idempotency_header: str = Field(
        default="Idempotency-Key",
        pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="Header carrying each message's idempotency key; the target drops a key it has seen.",
    )
    duplicate_status: list[int] = Field(
        default_factory=lambda: [409],
        description="Statuses meaning 'already received' (counted as duplicates, not dead-lettered).",
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Longest one request may take, seconds.")
    max_retry_after_s: float = Field(
        default=300.0, gt=0, description="A target's Retry-After is honoured up to this many seconds."
    )
    verify_tls: bool = Field(default=True, description="Check the target's TLS certificate (https).")


_MEASUREMENT = r"^[^#\s\\][^\n\\]*$"  # line protocol: no comment mark, newline or backslash escapes


def _check_influx_url(value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ValueError("must be the server's base URL, http(s)://host:port (a path prefix allowed, no query)")
    return value.rstrip("/")


class InfluxSinkConfig(SinkBase):
    """The InfluxDB sink: every sample a line protocol point, to 1.x ``/write`` or 2.x/3.x ``/api/v2/write``."""

    kind: Literal["influxdb"] = Field(description="influxdb: InfluxDB 1.x, 2.x, 3.x or Cloud over HTTP.")
    url: Annotated[str, AfterValidator(_check_influx_url)] = Field(
        description="Base URL of the server, e.g. http://influxdb:8086 (the sink adds /write or /api/v2/write)."
    )
    api: Literal["v1", "v2"] = Field(
        default="v2",
        description="v1: POST /write?db=&rp= (InfluxDB 1.x); v2: POST /api/v2/write?org=&bucket= (InfluxDB 2.x, "
        "3.x, Cloud, and 1.8+'s compatibility endpoint).",
    )
    database: str | None = Field(
        default=None, min_length=1, description="v1: the database (query parameter db); required with api v1."
    )
    retention_policy: str | None = Field(
        default=None, min_length=1, description="v1: the retention policy (rp); default the database's default."
    )
    create_database: bool = Field(
        default=False,
        description="v1: run CREATE DATABASE at connect (idempotent; needs an admin user when auth is on).",
    )
    username: str | None = Field(
        default=None, min_length=1, description="v1: user name, sent with password as HTTP basic auth."
    )
    password: SecretStr | None = Field(
        default=None, description="v1: password of username (prefer UNS_SINKS__<n>__PASSWORD over the file)."
    )
    org: str | None = Field(default=None, min_length=1, description="v2: the organisation (name or id); required.")
    bucket: str | None = Field(
        default=None, min_length=1, description="v2: the bucket (InfluxDB 3: the database); required with api v2."
    )
    token: SecretStr | None = Field(
        default=None,
        description="API token sent as 'Authorization: Token <token>' (v2; v1 too when set: InfluxDB 1.8+, "
        "Cloud's v1 endpoint). Prefer UNS_SINKS__<n>__TOKEN over the file.",
    )
    measurement: Literal["metric", "class", "fixed"] = Field(
        default="metric",
        description="Measurement of a sample: metric = the metric name (Production/GoodCount), class = the "
        "class word (data, kpi), fixed = measurement_name. The name is a tag when it is not the measurement.",
    )
    measurement_name: str = Field(
        default="uns",
        pattern=_MEASUREMENT,
        description="The measurement of every sample when measurement is fixed.",
    )
    level_tags: list[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]] = Field(
        default_factory=lambda: ["enterprise", "site", "area", "line", "cell"],
        min_length=5,
        max_length=5,
        description="Tag keys of the equipment path's levels, outermost first (a shorter path sets fewer tags).",
    )
    events_measurement: str | None = Field(
        default="mes_events",
        pattern=_MEASUREMENT,
        description="Measurement of MES events (tags: levels and event; field body, the JSON as received); "
        "null = do not write MES events (they are acknowledged and skipped).",
    )
    dead_letter_measurement: str = Field(
        default="uns_dead_letters",
        pattern=_MEASUREMENT,
        description="Measurement of dead letters (tags sink, field; fields topic, reason, payload).",
    )
    gzip: bool = Field(default=True, description="Send each batch gzip-compressed (Content-Encoding: gzip).")
    timeout_s: float = Field(default=10.0, gt=0, description="Longest one write request may take, seconds.")
    verify_tls: bool = Field(default=True, description="Check the server's TLS certificate (https).")

    @model_validator(mode="after")
    def _api_fields(self) -> Self:
        if self.api == "v1" and self.database is None:
            raise ValueError("api v1 needs database")
        if self.api == "v2" and (self.org is None or self.bucket is None):
            raise ValueError("api v2 needs org and bucket")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


def _check_sqlalchemy_url(value: str) -> str:
    scheme = urllib.parse.urlsplit(value).scheme
    if scheme not in ("sqlite+aiosqlite", "postgresql+psycopg", "mysql+asyncmy"):
        raise ValueError(
            "must be a SQLAlchemy async URL: sqlite+aiosqlite:///path, postgresql+psycopg://user:pw@host/db "
            "or mysql+asyncmy://user:pw@host/db"
        )
    return value


class SqlInsertTable(BaseModel):
    """One staging table and the messages that go into it: a row per message, columns from templates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: Annotated[str, AfterValidator(_check_filter)] = Field(
        description="MQTT topic filter of the messages stored in this table (e.g. +/+/+/+/+/mes/production_count); "
        "the first table whose filter fits a topic wins."
    )
    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$", description="The table (it must exist).")
    db_schema: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$", description="The table's schema (default: the URL's)."
    )
    key_column: str = Field(
        default="event_key",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="Column holding the message's key (${key}); it must be UNIQUE (or the primary key): a "
        "re-delivered message is ignored by it (ON CONFLICT DO NOTHING / INSERT IGNORE).",
    )
    columns: dict[str, object] = Field(
        min_length=1,
        description="column -> template: ${...} placeholders as the REST sink's body (topic, path, name, "
        "timestamp_ms, timestamp, key, body.<field>, a trailing ? for optional); a date/time column takes "
        "an ISO time or ms since 1970.",
    )


class SqlInsertSinkConfig(DeadLetterFileSink):
    """SQL insert: MES events (confirmations, scrap, material consumed) into an ERP's staging tables."""

    kind: Literal["sql_insert"] = Field(description="sql_insert: rows into existing tables through SQLAlchemy 2.")
    url: Annotated[str, AfterValidator(_check_sqlalchemy_url)] = Field(
        description="Database: sqlite+aiosqlite:///path, postgresql+psycopg://user:pw@host:port/db or "
        "mysql+asyncmy://user:pw@host:port/db."
    )
    tables: list[SqlInsertTable] = Field(
        min_length=1, description="Where each message goes; a message no table matches is acknowledged and skipped."
    )
    connect_timeout_s: float = Field(default=5.0, gt=0, description="Longest a connection attempt may take, seconds.")


class AmqpSinkConfig(DeadLetterFileSink):
    """AMQP 0-9-1 out (RabbitMQ): every UNS message to a topic exchange, routing key = the topic with '.'."""

    kind: Literal["amqp"] = Field(description="amqp: AMQP 0-9-1 (RabbitMQ) with publisher confirms.")
    url: Annotated[SecretStr, AfterValidator(check_amqp_url)] = Field(
        description="amqp://user:password@host:port/vhost (amqps:// for TLS); never shown in logs or health."
    )
    exchange: str = Field(default="uns", pattern=AMQP_NAME, description="The topic exchange messages are published to.")
    declare: bool = Field(
        default=True, description="Declare the exchange (topic, durable) at connect; false = it must exist."
    )
    persistent: bool = Field(
        default=True, description="Delivery mode 2: durable queues keep the messages across a RabbitMQ restart."
    )
    confirm_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest RabbitMQ may go without confirming any message of a batch being published, seconds "
        "(a large batch on a slow disk may take longer in all).",
    )
    connect_timeout_s: float = Field(default=5.0, gt=0, description="Longest a connection attempt may take, seconds.")
    heartbeat_s: int = Field(default=30, ge=0, le=600, description="AMQP heartbeat; 0 = none.")

    @property
    def target(self) -> str:
        """The URL without its password, and the exchange."""
        return f"{redact_amqp_url(self.url)} exchange {self.exchange}"


SinkConfig = Annotated[
    PostgresSinkConfig | RestSinkConfig | InfluxSinkConfig | SqlInsertSinkConfig | AmqpSinkConfig,
    Field(discriminator="kind"),
]
"""Any sink's config; ``kind`` picks the model (InfluxDB, SQL insert and REST sinks join this union)."""
