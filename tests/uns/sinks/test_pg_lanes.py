"""A large batch is written on two connections at once (lanes split by series), still exactly once."""

from __future__ import annotations

import orjson
import psycopg
import pytest

from model.sinks import PostgresSinkConfig
from uns.clock import now_ms
from uns.errors import RowsRefused
from uns.historian.rows import RowParser, SampleRow
from uns.historian.store import Batch
from uns.sinks.postgres import LANES, SPLIT_ROWS, PostgresWriter

SERIES = 10


def _batch(rows: int, *, nul_at: int | None = None) -> Batch:
    """``rows`` samples over ``SERIES`` topics; the one at ``nul_at`` a string PostgreSQL refuses (a NUL)."""
    parser = RowParser(max_future_ms=300_000)
    now = now_ms()
    samples = []
    for i in range(rows):
        topic = f"acme/dallas/bottling/line1/c{i % SERIES}/data/Temp"
        value: object = "a\u0000b" if i == nul_at else float(i)
        datatype = "String" if i == nul_at else "Double"
        doc = {"value": value, "timestamp_ms": now - 60_000 + i, "datatype": datatype}
        row = parser.parse(topic, orjson.dumps(doc), now_ms=now)
        assert isinstance(row, SampleRow), row
        samples.append(row)
    return Batch(samples=samples, received_ms=[now] * rows)


def _one(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as conn:
        found = conn.execute(sql).fetchone()
    assert found is not None
    return int(str(found[0]))


def _stored(dsn: str) -> int:
    return _one(dsn, "SELECT count(*) FROM uns.samples")


async def test_a_large_batch_goes_on_two_connections_once_and_re_deliveries_are_ignored(pg_dsn: str) -> None:
    writer = PostgresWriter(config=PostgresSinkConfig(kind="postgres", name="pg", dsn=pg_dsn))
    try:
        await writer.connect()
        batch = _batch(SPLIT_ROWS)
        report = await writer.write(batch, sink="pg")
        assert (report.inserted, report.duplicates) == (SPLIT_ROWS, 0)
        sessions = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'uns-sink-pg'"
        assert _one(pg_dsn, sessions) == LANES == 2
        assert _stored(pg_dsn) == SPLIT_ROWS
        # each series' newest sample in latest, whichever lane wrote it
        assert _one(pg_dsn, "SELECT count(*) FROM uns.latest") == SERIES
        assert _one(pg_dsn, "SELECT min(value)::int8 FROM uns.latest") == SPLIT_ROWS - SERIES
        again = await writer.write(batch, sink="pg")
        assert (again.inserted, again.duplicates) == (0, SPLIT_ROWS)
        assert _stored(pg_dsn) == SPLIT_ROWS
    finally:
        await writer.aclose()


async def test_one_lane_refused_the_other_committed_and_the_retry_stores_each_sample_once(pg_dsn: str) -> None:
    writer = PostgresWriter(config=PostgresSinkConfig(kind="postgres", name="pg", dsn=pg_dsn))
    try:
        await writer.connect()
        bad = 7
        batch = _batch(SPLIT_ROWS, nul_at=bad)
        with pytest.raises(RowsRefused, match="0x00"):
            await writer.write(batch, sink="pg")
        half = _stored(pg_dsn)
        assert 0 < half < SPLIT_ROWS  # the lane without the bad row committed its series
        good = Batch(samples=batch.samples[:bad] + batch.samples[bad + 1 :], received_ms=batch.received_ms[1:])
        report = await writer.write(good, sink="pg")  # the framework's retry without the refused row
        assert (report.inserted, report.duplicates) == (SPLIT_ROWS - 1 - half, half)
        assert _stored(pg_dsn) == SPLIT_ROWS - 1
        distinct = "SELECT count(DISTINCT (series_id, ts)) FROM uns.samples"
        assert _one(pg_dsn, distinct) == SPLIT_ROWS - 1
    finally:
        await writer.aclose()
