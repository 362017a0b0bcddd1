"""The InfluxDB sink against a real InfluxDB 1.x (Debian's influxd) and a real broker: once, outages, refusals."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from model.sinks import InfluxSinkConfig
from tests.fixtures.broker import publisher, start_broker
from tests.fixtures.influxdb import InfluxServer, run_influxdb
from tests.fixtures.requires import require
from tests.fixtures.running import running
from tests.fixtures.waiting import next_json, until
from uns.clock import now_ms
from uns.connect import network_clients
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message
from uns.sinks.registry import build_sink
from uns.sinks.service import Sink

_ids = itertools.count()
CELL = "acme/dallas/bottling/line1/filler"
TOPIC = f"{CELL}/data/Production/GoodCount"


def envelope(value: object, ts: int, datatype: str = "UInt32", **extra: object) -> bytes:
    return orjson.dumps({"value": value, "timestamp_ms": ts, "quality": "good", "datatype": datatype, **extra})


def config(url: str, database: str, **overrides: object) -> InfluxSinkConfig:
    data: dict[str, object] = {
        "kind": "influxdb",
        "name": "influx",
        "url": url,
        "api": "v1",
        "database": database,
        "flush_interval_s": 0.05,
        "batch_rows": 500,
        "retry_min_s": 0.05,
        "retry_max_s": 0.3,
        "health_interval_s": 0.1,
        "client_id": f"test-influx-{next(_ids)}",
    }
    data.update(overrides)
    return InfluxSinkConfig.model_validate(data)


@pytest.fixture(scope="module")
def influx() -> Iterator[InfluxServer]:
    """One influxd for the module (about 1 s to start)."""
    with run_influxdb(require("influxdb")) as server:
        yield server


@pytest.fixture
def database(influx: InfluxServer, request: pytest.FixtureRequest) -> str:
    """A fresh database named after the test."""
    return influx.create_database(f"t{abs(hash(request.node.nodeid)) % 10**8}")


def sink_of(cfg: InfluxSinkConfig, url: str) -> Sink:
    return build_sink(cfg, enterprise="acme", clients=network_clients(BrokerUrl.from_str(url)))


def count(influx: InfluxServer, database: str, measurement: str = "Production/GoodCount") -> int:
    try:
        rows = influx.query(database, f'SELECT count(*) FROM "{measurement}"')  # noqa: S608  (the tests' names)
    except RuntimeError as exc:  # the sink creates its database at connect
        if "database not found" in str(exc):
            return 0
        raise
    return sum(int(str(value)) for value in rows[0][1:] if value is not None) if rows else 0


async def test_every_sample_of_a_counter_is_stored_once_through_a_real_broker(
    tmp_path: Path, influx: InfluxServer, database: str
) -> None:
    start = now_ms() - 60_000
    async with (
        start_broker(tmp_path) as broker,
        running(sink_of(config(influx.url, database), str(broker.url))) as sink,
        publisher(broker.url) as pub,
    ):
        for i in range(3000):
            await pub.publish(TOPIC, envelope(i, start + i * 10), qos=1)
        # re-deliveries (a replay, a DUP): the same series and timestamp overwrite, never a second point
        for i in range(0, 3000, 100):
            await pub.publish(TOPIC, envelope(i, start + i * 10), qos=1)
        await until(lambda: sink.stats.stored == 3030, within_s=20, what=f"all written: {sink.health()}")
    rows = influx.query(database, 'SELECT "value" FROM "Production/GoodCount"')
    assert [value for _, value in rows] == list(range(3000))
    assert [ts for ts, _ in rows] == [start + i * 10 for i in range(3000)]
    series = influx.query(database, "SHOW SERIES")
    assert series == [
        [
            "Production/GoodCount,area=bottling,cell=filler,class=data,enterprise=acme,line=line1,quality=good,"
            "site=dallas"
        ]
    ]
    assert sink.health()["target"] == f"{influx.url} v1 db {database}"


async def test_values_of_every_type_and_awkward_names_read_back_as_sent(
    tmp_path: Path, influx: InfluxServer, database: str
) -> None:
    ts = now_ms() - 5000
    sent = [
        ("Temperature", envelope(21.5, ts, "Float"), 21.5),
        ("Running", envelope(True, ts, "Boolean"), True),
        ("Big", envelope(2**62 + 1, ts, "Int64"), 2**62 + 1),
        ("Label", envelope('lot "7", a\\b\nnext', ts, "String"), 'lot "7", a\\b\nnext'),
        ("Recipe", orjson.dumps({"value": {"speed": 3}, "timestamp_ms": ts}), '{"speed":3}'),
        ("Line Speed, m=s", envelope(1.25, ts, "Double"), 1.25),
    ]
    async with (
        start_broker(tmp_path) as broker,
        running(sink_of(config(influx.url, database), str(broker.url))) as sink,
        publisher(broker.url) as pub,
    ):
        await pub.publish_many([Message(f"{CELL}/data/{name}", body, qos=1) for name, body, _ in sent])
        await pub.publish(f"{CELL}/mes/count", orjson.dumps({"good": 5, "timestamp_ms": ts}), qos=1)
        await until(lambda: sink.stats.stored == len(sent) and sink.stats.events == 1, within_s=20)
    for name, _, value in sent:
        quoted = name.replace('"', '\\"')
        got = influx.query(database, f'SELECT "value" FROM "{quoted}"')  # noqa: S608  (the test's names)
        assert got == [[ts, value]], name
    events = influx.query(database, 'SELECT "body", "event", "cell" FROM "mes_events"')
    assert events == [[ts, f'{{"good":5,"timestamp_ms":{ts}}}', "count", "filler"]]


async def test_points_influxdb_refuses_are_dead_lettered_and_the_rest_stored(
    tmp_path: Path, influx: InfluxServer, database: str
) -> None:
    influx.query(database, f'CREATE RETENTION POLICY "hour" ON "{database}" DURATION 1h REPLICATION 1')
    now = now_ms()
    temp = "acme/dallas/bottling/line1/c{}/data/Temp"
    good = [Message(temp.format(i % 5), envelope(float(i), now - 5000 + i, "Double"), qos=1) for i in range(400)]
    bad = [
        Message(temp.format(1), b"{garbage", qos=1),  # refused by the row parser
        Message(temp.format(9), envelope("hot", now, "String"), qos=1),  # field type conflict: Temp is a float
        Message(f"{CELL}/data/Huge", envelope(2**64 - 1, now, "UInt64"), qos=1),  # beyond InfluxDB's int64
        Message(temp.format(8), envelope(1.0, now - 7_200_000, "Double"), qos=1),  # beyond the 1 h retention
    ]
    async with (
        start_broker(tmp_path) as broker,
        running(sink_of(config(influx.url, database, retention_policy="hour"), str(broker.url))) as sink,
        publisher(broker.url) as pub,
    ):
        await pub.publish(temp.format(0), envelope(-1.0, now - 6000, "Double"), qos=1)  # Temp's type is float
        await until(lambda: sink.stats.stored == 1, within_s=20)
        await pub.publish_many(good[:200] + bad + good[200:])
        await until(lambda: sink.stats.rejected == 4 and sink.stats.stored == 401, within_s=30, what=str(sink.health()))
    assert sink.stats.rejected_by_field == {"payload": 1, "database": 3}
    values = influx.query(database, 'SELECT "value" FROM "hour"."Temp"')
    assert sorted(float(str(v)) for _, v in values) == [-1.0] + [float(i) for i in range(400)]
    letters = influx.query(database, 'SELECT "field", "topic", "reason" FROM "hour"."uns_dead_letters"')
    by_topic = {str(topic): (field, str(reason)) for _, field, topic, reason in letters}
    assert by_topic[temp.format(1)][0] == "payload"
    assert "field type conflict" in by_topic[temp.format(9)][1]
    assert "beyond InfluxDB's 64-bit integer" in by_topic[f"{CELL}/data/Huge"][1]
    assert "points beyond retention policy dropped=1" in by_topic[temp.format(8)][1]
    assert len(letters) == 4


async def test_a_stopped_influxdb_loses_nothing_and_is_counted_in_health(tmp_path: Path) -> None:
    with run_influxdb(require("influxdb")) as own:  # its own server: this test stops it
        database = own.create_database("outage")
        start = now_ms() - 60_000
        async with (
            start_broker(tmp_path) as broker,
            running(sink_of(config(own.url, database), str(broker.url))) as sink,
            publisher(broker.url) as pub,
            MqttClient(url=broker.url, client_id=f"test-health-{next(_ids)}") as watcher,
        ):
            await watcher.subscribe([sink.health_topic], qos=0)
            for i in range(500):
                await pub.publish(TOPIC, envelope(i, start + i), qos=1)
            await until(lambda: sink.stats.stored == 500, within_s=20)
            await asyncio.to_thread(own.stop)
            for i in range(500, 1500):  # published while InfluxDB is down
                await pub.publish(TOPIC, envelope(i, start + i), qos=1)
            await until(lambda: sink.stats.write_failures >= 2 and not sink.stats.database_online, within_s=20)
            health = await next_json(watcher, lambda body: body["write_failures"] >= 2, what="the sink's health")
            assert health["database_online"] is False
            assert "write" in str(health["last_error"])
            await asyncio.to_thread(own.start)
            await until(lambda: sink.stats.stored == 1500, within_s=30, what="the backlog written after restart")
            health = await next_json(watcher, lambda body: body["stored"] == 1500, what="the sink's health")
            assert health["database_online"] is True
        rows = own.query(database, 'SELECT "value" FROM "Production/GoodCount"')
        assert [value for _, value in rows] == list(range(1500))


async def test_v1_credentials_go_as_basic_auth_and_wrong_ones_are_reported_then_nothing_lost(tmp_path: Path) -> None:
    with run_influxdb(require("influxdb"), admin=("admin", "right-pw")) as own:
        database = own.create_database("secured")
        start = now_ms() - 60_000
        async with start_broker(tmp_path) as broker:
            wrong = config(own.url, database, username="admin", password="wrong-pw", client_id="test-influx-auth")  # noqa: S106
            async with running(sink_of(wrong, str(broker.url))) as sink, publisher(broker.url) as pub:
                for i in range(100):
                    await pub.publish(TOPIC, envelope(i, start + i), qos=1)
                await until(lambda: sink.stats.write_failures >= 1, within_s=20)
                assert "HTTP 401" in str(sink.stats.last_error)
                assert "check username/password or token" in str(sink.stats.last_error)
                assert "wrong-pw" not in str(sink.health())
                assert sink.stats.stored == 0
            # the same session with the right password: what was published meanwhile is all there
            right = config(own.url, database, username="admin", password="right-pw", client_id="test-influx-auth")  # noqa: S106
            async with running(sink_of(right, str(broker.url))) as sink:
                await until(lambda: sink.stats.stored == 100, within_s=20, what=str(sink.health()))
        rows = own.query(database, 'SELECT "value" FROM "Production/GoodCount"')
        assert [value for _, value in rows] == list(range(100))
