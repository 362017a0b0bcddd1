"""The historian's DuckDB schema as an ordered list of migrations; the database records which ran.

A migration is applied once, in its own transaction, and recorded in ``schema_version``. Never edit
a released migration: append a new one. ``docs/historian.md`` describes every table.

Values are split by kind so each column stays typed and compresses well:

- ``value``      DOUBLE: every number, and booleans as 0/1 (so charts and aggregates work on them)
- ``value_text`` VARCHAR: strings, and the exact digits of an integer beyond 2^53
- ``value_json`` JSON: arrays, objects, DataSets and Templates

A sample's identity is ``(series_id, ts)``: one series has one value per millisecond. The ingest
path drops a sample whose identity is already stored, so re-deliveries and replays land once.
"""

from __future__ import annotations

import dataclasses

__all__ = ["LATEST_VERSION", "MIGRATIONS", "QUALITIES", "Migration"]

QUALITIES = ("good", "uncertain", "bad", "stale")
"""The ``quality`` enum, in the envelope's order."""


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: applied once, in order, never edited after release."""

    version: int
    description: str
    statements: tuple[str, ...]


_BASE = Migration(
    version=1,
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

MIGRATIONS: tuple[Migration, ...] = (_BASE, _ROLLUPS)
"""Every migration, oldest first; versions are 1, 2, 3, ... with no gaps."""

LATEST_VERSION = MIGRATIONS[-1].version
"""The schema version this uns-hub writes."""
