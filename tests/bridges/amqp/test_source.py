"""The AMQP source against Debian's RabbitMQ, as a Sparkplug edge node checked by an independent host."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from bridges.amqp import AmqpSource
from bridges.edge import EdgeNode
from bridges.source import Samples
from model.bridges.amqp import AmqpBridgeConfig
from tests.bridges.amqp.rabbit import drain, publish, unique
from tests.bridges.amqp.raw_publisher import raw_publish
from tests.bridges.edge.spb_host import SpbHost, until
from tests.fixtures.rabbitmq import RabbitNode
from tests.fixtures.recording import recording
from tests.fixtures.running import running
from uns.broker import EmbeddedBroker
from uns.connect import network_clients
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl

pytestmark = pytest.mark.timeout(90)  # the first test here may start the session's RabbitMQ (6-20 s)

CAPPER = "acme/dallas/packaging/line1/capper"


def _config(rabbitmq: RabbitNode, host_id: str, routes: list[dict[str, object]]) -> AmqpBridgeConfig:
    return AmqpBridgeConfig.model_validate(
        {
            "name": "lims",
            "edge": {"group": "lab", "primary_host_id": host_id, "first_reading_wait_s": 0.2,
                     "health_interval_s": 0.2},
            "url": rabbitmq.url,
            "exchange": unique("lab"),
            "queue": unique("uns-lims"),
            "binding_keys": ["lab.#"],
            "prefetch": 20,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "routes": routes,
        }
    )  # fmt: skip


@contextlib.asynccontextmanager
async def _running(config: AmqpBridgeConfig, broker: EmbeddedBroker, data_dir: Path) -> AsyncIterator[AmqpSource]:
    """The source under a real edge node, consuming once this yields."""
    clients = network_clients(broker.url)
    source = AmqpSource(config=config, clients=clients, data_dir=data_dir)
    node = EdgeNode(config=config.edge, node_id=config.node_id, source=source, clients=clients, data_dir=data_dir)
    async with running(node, name="test.amqp-node"):
        await until(lambda: source.link.up, what="the source consuming its queue")
        yield source


def _last(host: SpbHost, name: str) -> object:
    values = host.values("amqp", name, kinds=("DBIRTH", "DDATA"))
    return values[-1][0] if values else None


async def test_messages_become_metrics_and_mes_events_and_bad_ones_are_dead_lettered(
    broker: EmbeddedBroker, rabbitmq: RabbitNode, tmp_path: Path
) -> None:
    host = SpbHost(broker.url.port, "lab", "amqp-host-1")
    await host.start(online=True)
    config = _config(
        rabbitmq,
        "amqp-host-1",
        [
            {"routing_key": "lab.oven.*", "key_path": "$.id",
             "devices": [{"id": "oven", "metrics": [{"path": "$.temp", "name": "Temperature", "unit": "degC"}]}]},
            {"routing_key": "lab.qc.#", "items_path": "$.results", "key_path": "$.sample",
             "events": [{"event": "quality_inspection", "equipment_path": CAPPER, "id_paths": ["$.sample"],
                         "fields": {"characteristic": "$.char", "value": "$.v", "sample_id": "$.sample",
                                    "timestamp_ms": "$.at"}}]},
        ],
    )  # fmt: skip
    async with (
        MqttClient(url=broker.url, client_id="amqp-mes-listener") as listener,
        recording(listener, [f"{CAPPER}/mes/#"], name="test.mes-listener") as listened,
    ):
        seen = listened.messages
        try:
            async with _running(config, broker, tmp_path) as source:
                qc = {"results": [
                    {"sample": "s1", "char": "torque_nm", "v": 2.4, "at": "2026-12-06T10:00:00Z"},
                    {"sample": "s2", "v": 2.5, "at": "2026-12-06T10:00:01Z"},  # no characteristic: refused
                ]}  # fmt: skip
                # published by a client that is not aio-pika: pamqp's frames over a plain socket
                await asyncio.to_thread(
                    raw_publish,
                    rabbitmq.url,
                    config.exchange,
                    [
                        ("lab.oven.1", orjson.dumps({"id": "m1", "temp": 71.5})),
                        ("lab.oven.1", b'{"id": "m2", "temp"'),  # cut short: not JSON
                        ("lab.oven.1", orjson.dumps({"id": "m3", "temp": "hot"})),  # not a number
                        ("lab.qc.capper", orjson.dumps(qc)),
                        ("lab.other", b"{}"),  # bound, but no route takes it
                        ("lab.oven.1", orjson.dumps({"id": "m4", "temp": 72.0})),
                    ],
                )
                await until(lambda: source.counts["messages"] == 3, what=f"3 acknowledged: {source.counts}")
                await until(lambda: source.counts["dead_lettered"] == 3, what=f"3 dead-lettered: {source.counts}")
                await until(lambda: _last(host, "Status/DeadLettered") == 3, what="the status device's count")
                await until(lambda: len(seen) == 1, what="the inspection event")
                await until(
                    lambda: (
                        [v for v, _ in host.values("oven", "Temperature", kinds=("DBIRTH", "DDATA"))][-1:] == [72.0]
                    ),
                    what="the last temperature",
                )
        finally:
            host.stop()
    assert [v for v, _ in host.values("oven", "Temperature", kinds=("DBIRTH", "DDATA")) if v is not None] == [
        71.5,
        72.0,
    ]
    assert seen[0].topic == f"{CAPPER}/mes/quality_inspection"
    assert orjson.loads(seen[0].payload) == {
        "event_id": "lims:s1", "source": "lims", "characteristic": "torque_nm", "value": 2.4, "sample_id": "s1",
        "timestamp_ms": 1_796_551_200_000,
    }  # fmt: skip
    assert source.counts["refused"] == 3
    assert source.counts["unrouted"] == 1
    assert _last(host, "Status/Unrouted") == 1
    assert host.violations == []
    # RabbitMQ holds the refused messages as sent, in the dead-letter queue; the reasons are in our file
    letters = await drain(rabbitmq.url, config.dead_letters_to, count=3)
    assert sorted(m.body for m in letters) == sorted(
        [b'{"id": "m2", "temp"', orjson.dumps({"id": "m3", "temp": "hot"}), orjson.dumps(qc)]
    )
    deaths = [m.headers["x-death"] for m in letters]
    assert all(isinstance(d, list) and d[0]["reason"] == "rejected" for d in deaths), deaths  # type: ignore[index,call-overload]
    reasons = [orjson.loads(line) for line in (tmp_path / "amqp/lims/dead_letters.jsonl").read_bytes().splitlines()]
    assert [(r["key"], r["path"]) for r in reasons] == [
        ("routing key 'lab.oven.1'", "$"), ("lab.oven.1/m3", "$.temp"), ("lab.qc.capper/s2", "characteristic"),
    ]  # fmt: skip
    assert "not JSON" in reasons[0]["reason"]
    assert rabbitmq.queue_depth(config.queue) == 0


async def test_rabbitmq_stopped_for_a_while_shows_in_health_and_loses_nothing(
    broker: EmbeddedBroker, rabbitmq: RabbitNode, tmp_path: Path
) -> None:
    host = SpbHost(broker.url.port, "lab", "amqp-host-2")
    await host.start(online=True)
    meter = {"id": "meter", "metrics": [{"path": "$.n", "name": "N", "type": "Int64"}]}
    config = _config(rabbitmq, "amqp-host-2", [{"devices": [meter]}])
    sent = [("lab.meter", orjson.dumps({"n": n})) for n in range(300)]

    def got() -> set[object]:
        # a DBIRTH before the first reading (a loaded box past first_reading_wait_s) carries N as null
        return {v for v, _ in host.values("meter", "N", kinds=("DBIRTH", "DDATA")) if v is not None}

    try:
        async with _running(config, broker, tmp_path) as source:
            await publish(rabbitmq.url, config.exchange, sent[:150])
            await until(lambda: len(got()) >= 1, what="the first values")
            await asyncio.to_thread(rabbitmq.stop_app)  # whatever was delivered and not acknowledged is requeued
            try:
                await until(lambda: host.count("DDEATH") >= 1, what="the status device's death")
                assert host.of("DDEATH")[-1].device == "amqp"
                assert source.link.up is False
            finally:
                await asyncio.to_thread(rabbitmq.start_app)
            await until(lambda: source.link.up, within_s=30, what="the robust connection back")
            await publish(rabbitmq.url, config.exchange, sent[150:])
            await until(lambda: got() >= set(range(300)), within_s=30, what=f"all 300 values: {len(got())}")
            await until(lambda: _last(host, "Status/Reconnects") == source.link.reconnects >= 1, what="reconnects")
            # deliveries taken before the stop whose acks were lost come again: the queue empties all the same
            await until(lambda: rabbitmq.queue_depth(config.queue) == 0, within_s=30, what="the queue drained")
    finally:
        host.stop()
    assert got() == set(range(300))
    assert host.count("DBIRTH") >= 3, host.count("DBIRTH")  # meter and amqp, then amqp again after the outage
    after_death = [r.resolved for r in host.received[host.received.index(host.of("DDEATH")[0]) :] if r.kind == "DBIRTH"]
    reborn = [value for resolved in after_death for name, value, _, _ in resolved if name == "Status/Reconnects"]
    assert reborn != [], "the status device is born again after the outage"
    assert all(isinstance(v, int) and v >= 1 for v in reborn), reborn  # not before the connection is back
    assert host.violations == []


async def test_a_delivery_is_acknowledged_only_when_the_engine_asks_for_more(
    rabbitmq: RabbitNode, tmp_path: Path
) -> None:
    meter = {"id": "meter", "metrics": [{"path": "$.n", "name": "N", "type": "Int64"}]}
    config = _config(rabbitmq, "amqp-host-3", [{"devices": [meter]}])
    source = AmqpSource(config=config, clients=network_clients(BrokerUrl(port=1)), data_dir=tmp_path)

    def unacked() -> int:
        return rabbitmq.queue_depth(config.queue, "messages_unacknowledged")

    async with source:
        events = source.events()
        while not source.link.up:
            await anext(events)
        await publish(rabbitmq.url, config.exchange, [("lab.meter", b'{"n": 1}')])
        event = await anext(events)
        while not (isinstance(event, Samples) and event.device == "meter"):
            event = await anext(events)
        assert [s.value for s in event.samples] == [1]
        # the consumer holds the samples and has not asked for more: RabbitMQ still waits for the ack
        await until(lambda: unacked() == 1, what="one delivery unacknowledged")
        assert source.counts["messages"] == 0
        await anext(events)  # the engine asks for more: the delivery is acknowledged first
        assert source.counts["messages"] == 1
        await until(lambda: unacked() == 0, what="the delivery acknowledged")
        await events.aclose()
    assert rabbitmq.queue_depth(config.queue) == 0
