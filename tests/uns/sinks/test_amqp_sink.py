"""The AMQP sink against Debian's RabbitMQ through a real broker: keys, bodies, ids, confirms, an outage."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import aio_pika
import orjson
import pytest

from model.sinks import AmqpSinkConfig
from tests.bridges.amqp.rabbit import drain, unique
from tests.fixtures.broker import publisher, start_broker
from tests.fixtures.rabbitmq import RabbitNode
from tests.fixtures.running import running
from tests.fixtures.waiting import until
from tests.uns.sinks.test_postgres_sink import envelope
from uns.clock import now_ms
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl, Message
from uns.sinks.dead_letters import DeadLetters
from uns.sinks.registry import build_sink
from uns.sinks.service import Sink

pytestmark = pytest.mark.timeout(90)  # the first test here may start the session's RabbitMQ (6-20 s)

_ids = itertools.count()
COUNT = "acme/dallas/bottling/line1/filler/data/Production/GoodCount"
DONE = "acme/dallas/bottling/line1/filler/mes/order_complete"
DOTTED = "acme/dallas/bottling/line1/filler/data/Temp.1"


def _config(rabbitmq: RabbitNode, tmp_path: Path, exchange: str) -> AmqpSinkConfig:
    return AmqpSinkConfig.model_validate(
        {
            "kind": "amqp",
            "name": "rabbit",
            "url": rabbitmq.url,
            "exchange": exchange,
            "flush_interval_s": 0.05,
            "batch_rows": 200,
            "retry_min_s": 0.05,
            "retry_max_s": 0.3,
            "health_interval_s": 0.1,
            "client_id": f"test-amqp-sink-{next(_ids)}",
            "dead_letters_path": str(tmp_path / "dead.sqlite"),
        }
    )


def _sink(config: AmqpSinkConfig, url: str) -> Sink:
    return build_sink(config, enterprise="acme", clients=network_clients(BrokerUrl.from_str(url)))


async def _bound_queue(rabbitmq: RabbitNode, exchange: str, binding: str) -> str:
    """A durable queue of the test's, bound to the sink's exchange (declared here as the sink declares it)."""
    queue = unique("uns-out")
    async with await aio_pika.connect(rabbitmq.url) as connection:
        channel = await connection.channel()
        target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        declared = await channel.declare_queue(queue, durable=True)
        await declared.bind(target, routing_key=binding)
    return queue


async def test_every_message_reaches_a_bound_queue_with_its_routing_key_body_and_id(
    rabbitmq: RabbitNode, tmp_path: Path
) -> None:
    exchange = unique("uns")
    queue = await _bound_queue(rabbitmq, exchange, "acme.#")
    start = now_ms() - 60_000
    too_long = "acme/dallas/bottling/line1/filler/data/" + "x" * 250
    async with start_broker(tmp_path) as broker:
        config = _config(rabbitmq, tmp_path, exchange)
        async with running(_sink(config, str(broker.url))) as sink, publisher(broker.url) as pub:
            await pub.publish_many([Message(COUNT, envelope(i, start + i), qos=1) for i in range(200)])
            orders = [orjson.dumps({"order_id": f"WO-{i}", "timestamp_ms": start + i}) for i in range(50)]
            await pub.publish_many([Message(DONE, body, qos=1) for body in orders])
            await pub.publish(DOTTED, envelope(21.5, start, "Double", unit="degC"), qos=1)
            await pub.publish(too_long, envelope(1, start), qos=1)  # its routing key would be 283 bytes
            await pub.publish(COUNT, b"not json", qos=1)
            await until(lambda: sink.stats.stored + sink.stats.events == 251, within_s=20, what=f"{sink.health()}")
            await until(lambda: sink.stats.rejected == 2, what=f"two dead letters: {sink.health()}")
    got = await drain(rabbitmq.url, queue, count=251)
    by_key: dict[str, list[aio_pika.abc.AbstractIncomingMessage]] = {}
    for message in got:
        by_key.setdefault(message.routing_key or "", []).append(message)
    assert sorted(by_key) == [
        "acme.dallas.bottling.line1.filler.data.Production.GoodCount",
        "acme.dallas.bottling.line1.filler.data.Temp%2E1",
        "acme.dallas.bottling.line1.filler.mes.order_complete",
    ]
    counts = by_key["acme.dallas.bottling.line1.filler.data.Production.GoodCount"]
    assert sorted(orjson.loads(m.body)["value"] for m in counts) == list(range(200))
    first = next(m for m in counts if orjson.loads(m.body)["value"] == 7)
    assert orjson.loads(first.body) == {"value": 7, "timestamp_ms": start + 7, "quality": "good", "datatype": "UInt32"}
    assert first.headers == {"uns-topic": COUNT}
    assert first.content_type == "application/json"
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert first.timestamp is not None
    assert int(first.timestamp.timestamp()) == (start + 7) // 1000  # AMQP stamps whole seconds
    assert len({m.message_id for m in counts}) == 200  # one key per sample: the consumer's de-duplication key
    events = by_key["acme.dallas.bottling.line1.filler.mes.order_complete"]
    assert sorted(m.body for m in events) == sorted(orders)  # an MES event as it was published
    (dotted,) = by_key["acme.dallas.bottling.line1.filler.data.Temp%2E1"]
    assert orjson.loads(dotted.body)["unit"] == "degC"
    letters = DeadLetters(tmp_path / "dead.sqlite").list()
    assert sorted((letter.topic, letter.field) for letter in letters) == [(COUNT, "payload"), (too_long, "routing_key")]
    assert sink.stats.rejected_by_field == {"payload": 1, "routing_key": 1}


async def test_rabbitmq_stopped_while_messages_arrive_loses_nothing_and_shows_in_health(
    rabbitmq: RabbitNode, tmp_path: Path
) -> None:
    exchange = unique("uns")
    queue = await _bound_queue(rabbitmq, exchange, "acme.*.*.*.*.data.#")
    start = now_ms() - 60_000
    healths: list[dict[str, object]] = []
    async with start_broker(tmp_path) as broker:
        config = _config(rabbitmq, tmp_path, exchange)
        async with running(_sink(config, str(broker.url))) as sink, publisher(broker.url) as pub:
            await pub.publish_many([Message(COUNT, envelope(i, start + i), qos=1) for i in range(100)])
            await until(lambda: sink.stats.stored == 100, within_s=20, what=f"the first 100: {sink.health()}")
            await asyncio.to_thread(rabbitmq.stop_app)
            try:
                await pub.publish_many([Message(COUNT, envelope(i, start + i), qos=1) for i in range(100, 200)])
                await until(lambda: sink.stats.write_failures >= 2, within_s=20, what=f"failed writes: {sink.health()}")
                healths.append(sink.health())
            finally:
                await asyncio.to_thread(rabbitmq.start_app)
            await until(lambda: sink.stats.stored == 200, within_s=30, what=f"all 200: {sink.health()}")
            healths.append(sink.health())
    assert healths[0]["database_online"] is False
    assert "cannot connect" in str(healths[0]["last_error"]) or "publishing" in str(healths[0]["last_error"])
    assert "guest:***@" in str(healths[0]["target"])
    assert healths[1]["database_online"] is True
    got = await drain(rabbitmq.url, queue, count=200)
    assert sorted(orjson.loads(m.body)["value"] for m in got) == list(range(200))  # durable: kept across the stop
