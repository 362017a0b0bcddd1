"""``uns query last|raw --sink NAME``: the history documents of ``/api/history`` answered from a PostgreSQL sink.

The documents are the DuckDB history's ``last`` and ``raw`` (``uns.query.documents``: same keys,
times written in ``tz``), read through ``PostgresHistory``; the other queries (aggregates, states,
as-of) are DuckDB's alone for now and are refused naming ``--sink``.
"""

from __future__ import annotations

import orjson

from model.config import Settings
from model.sinks import PostgresSinkConfig, SinkConfig
from uns.clock import utc_now
from uns.errors import BadArgument
from uns.query.args import Document, Params, QueryArgs, document_bytes
from uns.query.documents import last_document, raw_document
from uns.sinks.postgres_history import PostgresHistory
from uns.sinks.run import sink_config

__all__ = ["SINK_ENDPOINTS", "reader_document", "sink_document", "sink_reader"]

SINK_ENDPOINTS = ("last", "raw")
"""The history endpoints a PostgreSQL sink answers."""


def reader_document(reader: PostgresHistory, endpoint: str, params: Params) -> Document:
    """The ``endpoint`` (``last`` or ``raw``) document from ``reader``, times as datetimes in ``tz``.

    Raises:
        BadArgument: ``sink`` for a query a sink does not answer; any other parameter as the history API names it.
        UnknownSeries: a topic no series has.
        psycopg.Error: the database cannot be read.
    """
    if endpoint == "last":
        return last_document(reader, QueryArgs(endpoint, params, ("match", "tz"), utc_now()))
    if endpoint == "raw":
        return raw_document(reader, QueryArgs(endpoint, params, ("topic", "start", "end", "limit", "tz"), utc_now()))
    raise BadArgument("sink", f"a sink answers {' and '.join(SINK_ENDPOINTS)} only; ask the historian for {endpoint}")


def sink_reader(config: SinkConfig) -> PostgresHistory:
    """The reader of a PostgreSQL sink's tables (``BadArgument`` naming ``sink`` for another kind)."""
    if not isinstance(config, PostgresSinkConfig):
        raise BadArgument("sink", f"sink {config.name} is kind {config.kind}: only postgres sinks can be read back")
    return PostgresHistory(dsn=config.dsn, schema=config.db_schema)


def sink_document(settings: Settings, name: str, endpoint: str, params: Params) -> Document:
    """The ``endpoint`` document answered from the PostgreSQL sink ``name`` of ``settings``, as JSON values.

    Raises:
        BadArgument: ``sink`` for a query a sink does not answer; any other parameter as the history API names it.
        ConfigError: no sink of that name.
        UnknownSeries: a topic no series has.
    """
    if endpoint not in SINK_ENDPOINTS:
        raise BadArgument(
            "sink", f"a sink answers {' and '.join(SINK_ENDPOINTS)} only; ask the historian for {endpoint}"
        )
    document = reader_document(sink_reader(sink_config(settings, name)), endpoint, params)
    parsed: Document = orjson.loads(document_bytes(document))  # times as the HTTP API writes them
    return parsed
