"""The PostgreSQL sink's pure core: partitions, the sample identity, and the TimescaleDB statements."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from uns.sinks.postgres_sql import (
    Partition,
    hypertable_statements,
    partition_statement,
    partitions_for,
    schema_statements,
)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("partition", "ts", "start", "end"),
    [
        ("day", "2026-12-06T23:59:59.999", "2026-12-06", "2026-12-07"),
        ("day", "2026-12-07T00:00:00", "2026-12-07", "2026-12-08"),
        ("week", "2026-12-06T12:00:00", "2026-11-30", "2026-12-07"),  # a Sunday: its ISO week began Monday
        ("week", "2026-12-07T00:00:00", "2026-12-07", "2026-12-14"),
        ("month", "2026-12-31T23:00:00", "2026-12-01", "2027-01-01"),
        ("month", "2024-02-29T01:00:00", "2024-02-01", "2024-03-01"),
        ("day", "1970-01-01T00:00:00", "1970-01-01", "1970-01-02"),
    ],
)
def test_a_timestamp_falls_in_the_partition_of_its_utc_period(partition: str, ts: str, start: str, end: str) -> None:
    assert partitions_for([_ms(ts)], partition) == {Partition(_utc(start), _utc(end))}


def test_partitions_ahead_of_now_are_the_next_periods() -> None:
    now = _ms("2026-12-31T10:00:00")
    found = sorted(partitions_for([], "day", now_ms=now, ahead=2))
    assert [p.name for p in found] == ["samples_20261231", "samples_20270101", "samples_20270102"]
    months = sorted(partitions_for([_ms("2026-01-15T00:00:00")], "month", now_ms=now, ahead=1))
    assert [p.name for p in months] == ["samples_20260101", "samples_20261201", "samples_20270101"]


def test_partition_statement_names_its_range() -> None:
    part = Partition(_utc("2026-12-06"), _utc("2026-12-07"))
    assert partition_statement("uns", part) == (
        "CREATE TABLE IF NOT EXISTS uns.samples_20261206 PARTITION OF uns.samples"
        " FOR VALUES FROM ('2026-12-06T00:00:00+00:00') TO ('2026-12-07T00:00:00+00:00')"
    )


def test_hypertable_statements_compress_by_series_after_the_configured_age() -> None:
    steps = hypertable_statements("uns", partition="week", compress_after_days=7)
    assert steps == [
        "CREATE EXTENSION IF NOT EXISTS timescaledb",
        "SELECT create_hypertable('uns.samples', 'ts', chunk_time_interval => interval '7 days',"
        " if_not_exists => true, migrate_data => true)",
        "ALTER TABLE uns.samples SET (timescaledb.compress, timescaledb.compress_segmentby = 'series_id',"
        " timescaledb.compress_orderby = 'ts DESC, vkey')",
        "SELECT add_compression_policy('uns.samples', interval '604800 seconds', if_not_exists => true)",
    ]


def test_a_hypertable_samples_table_is_not_range_partitioned() -> None:
    plain = next(s for s in schema_statements("uns", hypertable=False) if "uns.samples (" in s)
    hyper = next(s for s in schema_statements("uns", hypertable=True) if "uns.samples (" in s)
    assert plain.endswith("PARTITION BY RANGE (ts)")
    assert "PARTITION BY" not in hyper
    assert "PRIMARY KEY (series_id, ts, vkey)" in hyper  # TimescaleDB needs the time column in every unique key
