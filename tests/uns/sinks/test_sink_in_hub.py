"""A sink in the settings runs inside ``uns up``: the ready line names it, its health and history are served."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.fixtures.broker import publisher
from tests.fixtures.up import hub_up
from tests.fixtures.waiting import until
from tests.uns.sinks.test_postgres_sink import count, envelope, query
from uns.clock import now_ms


async def test_uns_up_runs_the_configured_postgres_sink(tmp_path: Path, pg_dsn: str) -> None:
    sink = {"kind": "postgres", "name": "pg", "dsn": pg_dsn, "flush_interval_s": 0.05}
    overrides: dict[str, object] = {"historian.enabled": False, "sinks": [sink]}
    async with hub_up(tmp_path, overrides, name="test.hub-with-sink") as up:
        endpoints, plant = up.endpoints, up.plant
        assert endpoints["sinks"] == "pg"
        topic = f"{plant.enterprise.id}/dallas/packaging/line1/filler/data/Temp"
        async with publisher(endpoints["mqtt"]) as pub:
            await pub.publish(topic, envelope(21.5, now_ms(), "Double"), qos=1)
            await until(lambda: count(pg_dsn) == 1, within_s=20)
        assert query(pg_dsn, "SELECT value FROM uns.samples") == [(21.5,)]
        async with httpx.AsyncClient(base_url=endpoints["http"], timeout=5) as client:
            health = (await client.get("/api/health")).json()
            assert health["sink.pg"]["stored"] == 1
            assert health["sink.pg"]["database_online"] is True
            last = await client.get("/api/sinks/pg/history/last", params={"match": topic})
            raw = await client.get("/api/sinks/pg/history/raw", params={"topic": topic, "start": "-1h"})
            refused = await client.get("/api/sinks/pg/history/aggregate", params={"topic": topic})
            missing = await client.get("/api/sinks/nope/history/last", params={"match": topic})
        assert [(row["topic"], row["value"]) for row in last.json()["rows"]] == [(topic, 21.5)]
        assert [row["value"] for row in raw.json()["rows"]] == [21.5]
        assert (refused.status_code, refused.json()["field"]) == (400, "sink")
        assert (missing.status_code, missing.json()["field"]) == (404, "sink")


async def test_uns_up_runs_a_sink_of_another_kind_whose_history_is_refused_naming_sink(tmp_path: Path) -> None:
    # a REST sink has no tables to read back: its history answers 400, and the hub still starts
    sink = {"kind": "rest", "name": "erp", "routes": [{"url": "http://127.0.0.1:9/orders"}]}
    overrides: dict[str, object] = {"historian.enabled": False, "sinks": [sink]}
    async with hub_up(tmp_path, overrides, name="test.hub-with-rest-sink") as up:
        assert up.endpoints["sinks"] == "erp"
        async with httpx.AsyncClient(base_url=up.endpoints["http"], timeout=5) as client:
            refused = await client.get("/api/sinks/erp/history/last", params={"match": "#"})
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": "sink: sink erp is kind rest: only postgres sinks can be read back", "field": "sink"},
    )
