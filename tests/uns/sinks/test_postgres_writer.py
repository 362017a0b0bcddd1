"""The PostgreSQL writer alone against a real server: partitions on demand, after retention, and a refused login."""

from __future__ import annotations

import time

import orjson
import psycopg
import pytest

from model.sinks import PostgresSinkConfig
from tests.fixtures.postgres import PgCluster
from uns.clock import now_ms
from uns.errors import SinkUnavailable
from uns.historian.rows import RowParser, SampleRow
from uns.historian.store import Batch
from uns.sinks.postgres import PostgresWriter

TOPIC = "acme/dallas/bottling/line1/filler/data/Temp"
_DAY_MS = 86_400_000


def _batch(*ts_ms: int) -> Batch:
    parser = RowParser(max_future_ms=300_000)
    now = now_ms()
    rows = [parser.parse(TOPIC, orjson.dumps({"value": 1.5, "timestamp_ms": ts}), now_ms=now) for ts in ts_ms]
    samples = [row for row in rows if isinstance(row, SampleRow)]
    return Batch(samples=samples, received_ms=[now] * len(samples))


def _partitions(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'uns.samples'::regclass ORDER BY 1"
        ).fetchall()
    return [str(name) for (name,) in rows]


async def test_backfill_gets_its_partition_and_a_dropped_partition_comes_back(pg_dsn: str) -> None:
    writer = PostgresWriter(config=PostgresSinkConfig(kind="postgres", name="pg", dsn=pg_dsn, partitions_ahead=1))
    try:
        await writer.connect()
        now = now_ms()
        assert len(_partitions(pg_dsn)) == 2  # today and one ahead
        old = now - 40 * _DAY_MS  # store-and-forward backfill from 40 days ago
        report = await writer.write(_batch(old, now), sink="pg")
        assert (report.inserted, report.duplicates) == (2, 0)
        old_part = time.strftime("samples_%Y%m%d", time.gmtime(old / 1000))
        assert old_part in _partitions(pg_dsn)
        with psycopg.connect(pg_dsn) as conn:
            conn.execute(f"DROP TABLE uns.{old_part}")  # retention, behind the writer's back
        report = await writer.write(_batch(old + 1), sink="pg")
        assert report.inserted == 1  # the partition was made again, the row not refused
        assert old_part in _partitions(pg_dsn)
    finally:
        await writer.aclose()


async def test_a_refused_login_is_unavailable_naming_the_target_without_password(postgres: PgCluster) -> None:
    dsn = f"postgresql://nobody_here:secret@127.0.0.1:{postgres.port}/postgres"
    writer = PostgresWriter(config=PostgresSinkConfig(kind="postgres", name="pg", dsn=dsn))
    try:
        with pytest.raises(SinkUnavailable) as caught:
            await writer.connect()
    finally:
        await writer.aclose()
    assert "nobody_here" in str(caught.value)
    assert "secret" not in str(caught.value)
    assert caught.value.target.startswith("postgresql://nobody_here:***@127.0.0.1")
