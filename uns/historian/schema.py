"""The historian's tables in the store's DuckDB file, as its own ordered list of migrations.

``uns.store`` applies each once, in its own transaction, and records it in ``component_versions`` as
``("historian", version)``. Never edit a released migration: append a new one. ``legacy`` is the step's
number in the one sequence files had before each component was versioned on its own (docs/historian.md).
``docs/historian.md`` describes every table.

Values are split by kind so each column stays typed and compresses well:

- ``value``      DOUBLE: every number, and booleans as 0/1 (so charts and aggregates work on them)
- ``value_text`` VARCHAR: strings, and the exact digits of an integer beyond 2^53
- ``value_json`` JSON: arrays, objects, DataSets and Templates

A sample's identity is ``(series_id, ts, value, quality)`` (version 3): one series may hold several
values in one millisecond, kept in arrival order by ``seq`` (0, 1, ... within the millisecond). The
ingest path drops a sample whose identity is already stored, so re-deliveries and replays land once.
``mes_events`` is the historian's log of every MES message as received; the MES adapter's own tables
are in ``uns.mes.schema``, the alarm history's in ``uns.rules.schema``.
"""

from __future__ import annotations

from uns.store.migrations import Component, Migration

__all__ = ["QUALITIES", "SCHEMA"]

QUALITIES = ("good", "uncertain", "bad", "stale")
"""The ``quality`` enum, in the envelope's order."""


_BASE = Migration(
    version=1,
    legacy=1,
    description="series, samples, latest values, MES event log, dead letters",
    statements=(
        f"CREATE TYPE quality AS ENUM {QUALITIES!r}",
        """CREATE TABLE series (
            series_id   UINTEGER PRIMARY KEY,
            topic       VARCHAR NOT NULL UNIQUE,    -- the full UNS topic
            path        VARCHAR NOT NULL,           -- equipment path, enterprise/site/area/line/cell
            class       VARCHAR NOT NULL,           -- data or kpi
            metric      VARCHAR NOT NULL,           -- name after the class word, Sparkplug '/' kept
            datatype    VARCHAR,                    -- Sparkplug datatype name of the latest sample
            unit        VARCHAR,
            unbound     BOOLEAN NOT NULL DEFAULT false,
            first_seen  TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE samples (
            series_id   UINTEGER NOT NULL,
            ts          TIMESTAMPTZ NOT NULL,       -- when the value was sampled (envelope timestamp_ms)
            value       DOUBLE,
            value_text  VARCHAR,
            value_json  JSON,
            quality     quality NOT NULL,
            historical  BOOLEAN NOT NULL,           -- sent late from an edge node's store-and-forward
            source      VARCHAR,                    -- who produced it, e.g. the Sparkplug group/node/device
            received    TIMESTAMPTZ NOT NULL        -- when the historian took it
        )""",
        """CREATE TABLE latest (
            series_id   UINTEGER PRIMARY KEY,
            ts          TIMESTAMPTZ NOT NULL,
            value       DOUBLE,
            value_text  VARCHAR,
            value_json  JSON,
            quality     quality NOT NULL,
            historical  BOOLEAN NOT NULL,
            source      VARCHAR,
            received    TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE mes_events (
            event_key   UBIGINT NOT NULL,           -- hash of topic and body: a re-delivery lands once
            topic       VARCHAR NOT NULL,
            path        VARCHAR NOT NULL,
            event       VARCHAR NOT NULL,           -- the name after 'mes', e.g. work_order
            ts          TIMESTAMPTZ NOT NULL,       -- the body's timestamp_ms, else when it was received
            body        JSON NOT NULL,
            received    TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE dead_letters (
            received    TIMESTAMPTZ NOT NULL,
            topic       VARCHAR NOT NULL,
            field       VARCHAR NOT NULL,           -- what was wrong: topic, payload, value, timestamp_ms, ...
            reason      VARCHAR NOT NULL,
            payload     BLOB                        -- the first bytes as received
        )""",
    ),
)

_ROLLUPS = Migration(
    version=2,
    legacy=2,
    description="1-minute and 1-hour rollups, maintenance watermarks",
    statements=(
        *(
            f"""CREATE TABLE {table} (
                series_id   UINTEGER NOT NULL,
                bucket      TIMESTAMPTZ NOT NULL,   -- start of the bucket, UTC-aligned
                n           UBIGINT NOT NULL,       -- numeric samples in the bucket
                avg         DOUBLE,                 -- sample mean (not time-weighted)
                min         DOUBLE,
                max         DOUBLE,
                first       DOUBLE,
                last        DOUBLE,
                first_ts    TIMESTAMPTZ,
                last_ts     TIMESTAMPTZ
            )"""
            for table in ("rollup_1m", "rollup_1h")
        ),
        """CREATE TABLE maintenance (
            task        VARCHAR PRIMARY KEY,        -- e.g. rollup_1m
            watermark   TIMESTAMPTZ NOT NULL        -- everything before it is done
        )""",
    ),
)

_ARRIVAL_SEQ = Migration(
    version=3,
    legacy=4,
    description="samples and latest: seq, the arrival order of a series' values within one millisecond",
    statements=(
        # every stored row was the only one of its series and millisecond: it is the first, 0
        "ALTER TABLE samples ADD COLUMN seq UINTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE latest ADD COLUMN seq UINTEGER NOT NULL DEFAULT 0",
    ),
)

SCHEMA = Component(name="historian", migrations=(_BASE, _ROLLUPS, _ARRIVAL_SEQ))
"""The historian's migrations, oldest first."""
