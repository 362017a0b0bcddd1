"""``uns query last|raw --sink NAME`` answers from the PostgreSQL sink's tables, as the DuckDB history would."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from hub.cli import main
from model.sinks import PostgresSinkConfig
from uns.clock import now_ms
from uns.historian.rows import RowParser, SampleRow
from uns.historian.store import Batch
from uns.sinks.postgres import PostgresWriter

TOPIC = "acme/dallas/bottling/line1/filler/data/Production/GoodCount"


async def _store(dsn: str, start: int) -> None:
    parser = RowParser(max_future_ms=300_000)
    now = now_ms()
    payloads = [orjson.dumps({"value": i, "timestamp_ms": start + i * 1000, "datatype": "UInt32"}) for i in range(5)]
    samples = [row for p in payloads if isinstance(row := parser.parse(TOPIC, p, now_ms=now), SampleRow)]
    writer = PostgresWriter(config=PostgresSinkConfig(kind="postgres", name="pg", dsn=dsn))
    try:
        await writer.connect()
        await writer.write(Batch(samples=samples, received_ms=[now] * len(samples)), sink="pg")
    finally:
        await writer.aclose()


async def test_query_last_and_raw_from_the_sink(
    tmp_path: Path, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    start = now_ms() - 60_000
    await _store(pg_dsn, start)
    config = tmp_path / "uns.yaml"
    config.write_text(yaml.safe_dump({"sinks": [{"kind": "postgres", "name": "pg", "dsn": pg_dsn}]}))
    base = ["query", "--config", str(config), "--data-dir", str(tmp_path)]

    assert main([*base, "last", "acme/dallas/+/+/+/data/#", "--sink", "pg", "--format", "json"]) == 0
    last = orjson.loads(capsys.readouterr().out)
    assert [(row["topic"], row["value"], row["datatype"]) for row in last["rows"]] == [(TOPIC, 4, "UInt32")]

    assert main([*base, "raw", TOPIC, "--sink", "pg", "--start", "-10m", "--limit", "3", "--format", "json"]) == 0
    raw = orjson.loads(capsys.readouterr().out)
    assert [row["value"] for row in raw["rows"]] == [0, 1, 2]
    assert raw["truncated"] is True

    assert main([*base, "counts", "--sink", "pg"]) == 2  # DuckDB's alone: refused naming the flag
    assert "--sink: a sink answers last and raw only" in capsys.readouterr().err
    assert main([*base, "last", TOPIC, "--sink", "nope"]) == 1
    assert "no sink of that name" in capsys.readouterr().err
