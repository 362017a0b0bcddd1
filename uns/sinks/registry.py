"""``kind`` -> the writer of a sink: the one place a new sink kind is added.

Each writer's module is imported when a sink of its kind is built: the writers bring their client libraries
(SQLAlchemy, psycopg, aio-pika: ~0.5 s of imports and ~20 MiB together), which a hub without such a sink never uses.
"""

from __future__ import annotations

from model.sinks import (
    AmqpSinkConfig,
    InfluxSinkConfig,
    PostgresSinkConfig,
    RestSinkConfig,
    SinkBase,
    SqlInsertSinkConfig,
)
from uns.connect import ClientFactory
from uns.sinks.service import Sink
from uns.sinks.writer import SinkWriter

__all__ = ["KINDS", "build_sink"]

KINDS = ("postgres", "rest", "influxdb", "sql_insert", "amqp")
"""Every sink kind (``model.sinks.SinkConfig``'s discriminator values)."""


def _writer(config: SinkBase) -> SinkWriter:
    if isinstance(config, PostgresSinkConfig):
        from uns.sinks.postgres import PostgresWriter

        return PostgresWriter(config=config)
    if isinstance(config, RestSinkConfig):
        from uns.sinks.rest import RestWriter

        return RestWriter(config=config)
    if isinstance(config, SqlInsertSinkConfig):
        from uns.sinks.sql_insert import SqlInsertWriter

        return SqlInsertWriter(config=config)
    if isinstance(config, InfluxSinkConfig):
        from uns.sinks.influx import InfluxWriter

        return InfluxWriter(config=config)
    if isinstance(config, AmqpSinkConfig):
        from uns.sinks.amqp import AmqpWriter

        return AmqpWriter(config=config)
    raise ValueError(f"sink {config.name}: no writer for {type(config).__name__}")


def build_sink(config: SinkBase, *, enterprise: str, clients: ClientFactory) -> Sink:
    """The sink of ``config``, reading the UNS of ``enterprise`` through ``clients`` (enter it, then ``run()``)."""
    return Sink(config=config, writer=_writer(config), enterprise=enterprise, clients=clients)
