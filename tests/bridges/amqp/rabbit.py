"""A plain AMQP client for the tests, beside the code under test: publishes, reads queues, names things uniquely."""

from __future__ import annotations

import asyncio
import itertools

import aio_pika

__all__ = ["drain", "publish", "unique"]

_ids = itertools.count()


def unique(prefix: str) -> str:
    """A queue or exchange name no other test uses in this session's RabbitMQ node."""
    return f"{prefix}-{next(_ids)}"


async def publish(url: str, exchange: str, messages: list[tuple[str, bytes]], *, kind: str = "topic") -> None:
    """Publish persistent (routing key, body) pairs to ``exchange`` (declared durable), each confirmed."""
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.declare_exchange(exchange, aio_pika.ExchangeType(kind), durable=True)
        await asyncio.gather(
            *(
                target.publish(aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), key)
                for key, body in messages
            )
        )


async def drain(
    url: str, queue: str, *, within_s: float = 10.0, count: int
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Get ``count`` messages from ``queue`` (acknowledging them), waiting up to ``within_s``."""
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        source = await channel.get_queue(queue, ensure=True)
        deadline = asyncio.get_running_loop().time() + within_s
        while len(got) < count:
            message = await source.get(fail=False)
            if message is None:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"{queue}: {len(got)} of {count} messages within {within_s} s")
                await asyncio.sleep(0.02)
                continue
            await message.ack()
            got.append(message)
    return got
