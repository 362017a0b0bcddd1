"""``uns sink`` of kind amqp as its own process: killed with SIGKILL mid-stream and restarted, nothing lost."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import orjson
import pytest
import yaml

from tests.bridges.amqp.rabbit import unique
from tests.fixtures.broker import start_broker
from tests.fixtures.rabbitmq import RabbitNode
from tests.uns.sinks.crash_stream import killed_mid_stream
from uns.clock import now_ms
from uns.mqtt.types import Message

# two `uns sink` processes start (an import is seconds on a loaded box) and maybe the session's RabbitMQ
pytestmark = pytest.mark.timeout(150)

TOTAL = 1500
DONE = "acme/dallas/bottling/line1/filler/mes/order_complete"


@contextlib.asynccontextmanager
async def _consumer(url: str, exchange: str) -> AsyncIterator[list[aio_pika.abc.AbstractIncomingMessage]]:
    """Everything the exchange routes to a queue bound with acme.#, as it arrives."""
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(unique("crash-out"), durable=True)
        await queue.bind(target, "acme.#")

        async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            got.append(message)
            await message.ack()

        await queue.consume(take)
        yield got


async def test_an_amqp_sink_killed_mid_stream_and_restarted_loses_nothing(rabbitmq: RabbitNode, tmp_path: Path) -> None:
    exchange = unique("crash")
    sink = {"kind": "amqp", "name": "rabbit", "url": rabbitmq.url, "exchange": exchange,
            "topics": ["acme/+/+/+/+/mes/#"], "flush_interval_s": 0.1, "batch_rows": 50,
            "dead_letters_path": str(tmp_path / "dead.sqlite")}  # fmt: skip
    config = tmp_path / "uns.yaml"
    config.write_text(yaml.safe_dump({"sinks": [sink], "enterprise": "acme"}))
    orders = [orjson.dumps({"order_id": f"WO-{i}", "timestamp_ms": now_ms() - 1000}) for i in range(TOTAL)]
    async with start_broker(tmp_path) as broker, _consumer(rabbitmq.url, exchange) as got:
        args = ["sink", "rabbit", "--config", str(config), "--broker", str(broker.url), "--data-dir", str(tmp_path)]
        killed = await killed_mid_stream(
            args, tmp_path / "sink.log", str(broker.url), lambda i: Message(DONE, orders[i], qos=1),
            total=TOTAL, chunk=50, stored=lambda: len(got), some=150,
            all_in=lambda: {m.body for m in got} >= set(orders), what="orders published",
        )  # fmt: skip
        assert killed.at_kill < TOTAL, "the stream ended before the kill: not mid-stream"
        assert killed.exit_code == 0
    bodies = [m.body for m in got]
    assert sorted(set(bodies)) == sorted(orders)
    # what was confirmed but not acknowledged over MQTT at the kill came again, with the same message_id
    ids: dict[bytes, set[str | None]] = {}
    for message in got:
        ids.setdefault(message.body, set()).add(message.message_id)
    assert all(len(one) == 1 for one in ids.values())
    assert len({next(iter(one)) for one in ids.values()}) == TOTAL
