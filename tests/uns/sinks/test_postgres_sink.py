"""The PostgreSQL sink against a real PostgreSQL and a real broker: exactly once, outages, bad rows, shared groups."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg
import pytest

from model.sinks import PostgresSinkConfig
from tests.fixtures.broker import publisher, start_broker
from tests.fixtures.mosquitto import run_mosquitto
from tests.fixtures.postgres import run_postgres
from tests.fixtures.requires import require
from tests.fixtures.running import running
from tests.fixtures.waiting import next_json, until
from uns.clock import now_ms
from uns.connect import network_clients
from uns.errors import UnknownSeries
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message
from uns.sinks.postgres_history import PostgresHistory
from uns.sinks.registry import build_sink
from uns.sinks.service import Sink

_ids = itertools.count()
TOPIC = "acme/dallas/bottling/line1/filler/data/Production/GoodCount"


def envelope(value: object, ts: int, datatype: str = "UInt32", **extra: object) -> bytes:
    return orjson.dumps({"value": value, "timestamp_ms": ts, "quality": "good", "datatype": datatype, **extra})


def config(dsn: str, **overrides: object) -> PostgresSinkConfig:
    data: dict[str, object] = {
        "kind": "postgres",
        "name": "pg",
        "dsn": dsn,
        "flush_interval_s": 0.05,
        "batch_rows": 500,
        "retry_min_s": 0.05,
        "retry_max_s": 0.3,
        "health_interval_s": 0.1,
        "client_id": f"test-sink-{next(_ids)}",
    }
    data.update(overrides)
    return PostgresSinkConfig.model_validate(data)


def query(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def count(dsn: str, table: str = "samples") -> int:
    try:
        found = query(dsn, f"SELECT count(*) FROM uns.{table}")  # noqa: S608  (the tests' own table names)
        return int(str(found[0][0]))
    except psycopg.errors.UndefinedTable:
        return 0


def sink_of(cfg: PostgresSinkConfig, url: str) -> Sink:
    return build_sink(cfg, enterprise="acme", clients=network_clients(BrokerUrl.from_str(url)))


async def test_every_sample_of_a_counter_is_stored_once_through_a_real_broker(tmp_path: Path, pg_dsn: str) -> None:
    start = now_ms() - 60_000
    async with (
        start_broker(tmp_path) as broker,
        running(sink_of(config(pg_dsn), str(broker.url))) as sink,
        publisher(broker.url) as pub,
    ):
        for i in range(3000):
            await pub.publish(TOPIC, envelope(i, start + i * 10), qos=1)
        # re-deliveries: the same samples again (a replay, a DUP) are not stored twice
        for i in range(0, 3000, 100):
            await pub.publish(TOPIC, envelope(i, start + i * 10), qos=1)
        await until(
            lambda: sink.stats.stored + sink.stats.duplicates == 3030,
            within_s=20,
            what=f"all stored: {sink.health()}",
        )
    values = query(pg_dsn, "SELECT value FROM uns.samples ORDER BY ts")
    assert [v for (v,) in values] == [float(i) for i in range(3000)]
    assert sink.stats.stored == 3000
    assert sink.stats.duplicates == 30
    assert query(pg_dsn, "SELECT value, quality FROM uns.latest") == [(2999.0, "good")]
    assert query(pg_dsn, "SELECT topic, path, class, metric, datatype FROM uns.series") == [
        (TOPIC, "acme/dallas/bottling/line1/filler", "data", "Production/GoodCount", "UInt32")
    ]
    # partitions by day: the current one and two ahead at least
    parts = query(pg_dsn, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'uns.samples'::regclass")
    assert int(parts[0][0]) >= 3  # type: ignore[call-overload]


async def test_bad_envelopes_are_refused_and_counted_and_the_good_ones_around_them_stored(
    tmp_path: Path, pg_dsn: str
) -> None:
    now = now_ms()
    good = [Message(f"acme/dallas/bottling/line1/c{i % 5}/data/Temp", envelope(float(i), now - 5000 + i, "Double"))
            for i in range(400)]  # fmt: skip
    bad = [
        Message("acme/dallas/bottling/line1/c1/data/Temp", b"{garbage"),
        Message("acme/dallas/bottling/line1/c1/data/Count", envelope("many", now, "Int32")),
        Message("acme/dallas/bottling/line1/c1/data/Count", envelope(1, now + 86_400_000, "Int32")),
        # PostgreSQL refuses a NUL in text: isolated by halves, dead-lettered as field "database"
        Message("acme/dallas/bottling/line1/c1/data/Label", envelope("a\u0000b", now, "String")),
    ]
    async with (
        start_broker(tmp_path) as broker,
        running(sink_of(config(pg_dsn), str(broker.url))) as sink,
        publisher(broker.url) as pub,
    ):
        await pub.publish_many([Message(m.topic, m.payload, qos=1) for m in good[:200] + bad + good[200:]])
        await until(lambda: count(pg_dsn) == 400 and count(pg_dsn, "dead_letters") == 4, within_s=20)
    assert sink.stats.rejected_by_field == {"payload": 1, "value": 1, "timestamp_ms": 1, "database": 1}
    assert sink.stats.rejected == 4
    letters = query(pg_dsn, "SELECT sink, topic, field FROM uns.dead_letters ORDER BY field")
    assert letters == [
        ("pg", "acme/dallas/bottling/line1/c1/data/Label", "database"),
        ("pg", "acme/dallas/bottling/line1/c1/data/Temp", "payload"),
        ("pg", "acme/dallas/bottling/line1/c1/data/Count", "timestamp_ms"),
        ("pg", "acme/dallas/bottling/line1/c1/data/Count", "value"),
    ]
    # the refused sample is kept as the envelope it came in: it reads back as the same value and datatype
    kept = query(pg_dsn, "SELECT payload FROM uns.dead_letters WHERE field = 'database'")
    assert [orjson.loads(payload) for (payload,) in kept] == [  # type: ignore[arg-type]
        {"value": "a\u0000b", "timestamp_ms": now, "quality": "good", "datatype": "String"}
    ]
    values = query(pg_dsn, "SELECT value FROM uns.samples ORDER BY value")
    assert [v for (v,) in values] == [float(i) for i in range(400)]


async def test_a_stopped_database_loses_nothing_and_is_counted_in_health(tmp_path: Path) -> None:
    with run_postgres(require("postgres")) as own:  # its own cluster: this test stops it
        dsn = own.create_database("outage")
        start = now_ms() - 60_000
        async with (
            start_broker(tmp_path) as broker,
            running(sink_of(config(dsn), str(broker.url))) as sink,
            publisher(broker.url) as pub,
            MqttClient(url=broker.url, client_id=f"test-health-{next(_ids)}") as watcher,
        ):
            await watcher.subscribe([sink.health_topic], qos=0)
            for i in range(500):
                await pub.publish(TOPIC, envelope(i, start + i), qos=1)
            await until(lambda: sink.stats.stored == 500, within_s=20)
            await asyncio.to_thread(own.stop)
            for i in range(500, 1500):  # published while the database is down
                await pub.publish(TOPIC, envelope(i, start + i), qos=1)
            await until(lambda: sink.stats.write_failures >= 2 and not sink.stats.database_online, within_s=20)
            health = await next_json(watcher, lambda body: body["write_failures"] >= 2, what="the sink's health")
            assert health["database_online"] is False
            assert health["last_error"]
            await asyncio.to_thread(own.start)
            await until(lambda: sink.stats.stored == 1500, within_s=30, what="the backlog written after restart")
            health = await next_json(watcher, lambda body: body["stored"] == 1500, what="the sink's health")
            assert health["database_online"] is True
        values = [v for (v,) in query(dsn, "SELECT value FROM uns.samples ORDER BY ts")]
        assert values == [float(i) for i in range(1500)]


@contextlib.asynccontextmanager
async def a_broker(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """The embedded broker, or Mosquitto (the reference) letting 10,000 messages await a sink's ack."""
    if kind == "embedded":
        async with start_broker(tmp_path) as broker:
            yield str(broker.url)
    else:
        require("mosquitto")
        with run_mosquitto("max_inflight_messages 10000\n") as mosquitto:
            yield mosquitto.url


@pytest.mark.parametrize("kind", ["embedded", "mosquitto"])
async def test_two_sinks_on_one_shared_subscription_store_each_sample_once(
    tmp_path: Path, pg_dsn: str, kind: str
) -> None:
    start = now_ms() - 60_000
    topics = [f"acme/dallas/bottling/line1/c{i}/data/Count" for i in range(10)]
    async with a_broker(kind, tmp_path) as url:
        one = sink_of(config(pg_dsn, shared_group="pg", client_id="pg-1"), url)
        two = sink_of(config(pg_dsn, shared_group="pg", client_id="pg-2"), url)
        assert one.filters == ["$share/pg/acme/#"]
        async with running(one), running(two), publisher(url) as pub:
            batch = [Message(topics[i % 10], envelope(i, start + i), qos=1) for i in range(4000)]
            await pub.publish_many(batch)
            await until(lambda: count(pg_dsn) == 4000 and not one.health()["pending_rows"] and not two.health()[
                "pending_rows"], within_s=20)  # fmt: skip
    assert one.stats.stored > 0  # the stream was split
    assert two.stats.stored > 0
    assert one.stats.stored + two.stats.stored == 4000
    got = query(pg_dsn, "SELECT count(DISTINCT (series_id, ts)), count(*) FROM uns.samples")
    assert got == [(4000, 4000)]


async def test_last_and_raw_read_back_what_the_sink_stored_with_the_historian_types(
    tmp_path: Path, pg_dsn: str
) -> None:
    start = now_ms() - 10_000
    label = "acme/dallas/bottling/line1/filler/data/Label"
    recipe = "acme/dallas/bottling/line1/filler/data/Recipe"
    async with (
        start_broker(tmp_path) as broker,
        running(sink_of(config(pg_dsn), str(broker.url))) as sink,
        publisher(broker.url) as pub,
    ):
        for i in range(5):
            await pub.publish(TOPIC, envelope(i, start + i * 1000), qos=1)
        await pub.publish(label, envelope("lot 7", start, "String"), qos=1)
        await pub.publish(recipe, orjson.dumps({"value": {"speed": 3}, "timestamp_ms": start}), qos=1)
        await until(lambda: sink.stats.stored == 7, within_s=20)
    history = PostgresHistory(dsn=pg_dsn)
    last = history.last("acme/dallas/+/+/filler/data/#")
    assert [(v.topic, v.value, v.datatype) for v in last] == [
        (label, "lot 7", "String"),
        (TOPIC, 4, "UInt32"),
        (recipe, {"speed": 3}, "Json"),  # inferred from its JSON type, as in the historian
    ]
    assert last[1].ts == datetime.fromtimestamp((start + 4000) / 1000, UTC)
    points = history.raw(TOPIC, datetime.fromtimestamp(start / 1000 + 1, UTC), datetime.now(UTC), limit=3)
    assert [p.value for p in points] == [1, 2, 3]
    with pytest.raises(UnknownSeries):
        history.last("acme/dallas/bottling/line1/filler/data/Nope")
