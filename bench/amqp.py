"""Benchmark: the AMQP source and sink against a throwaway RabbitNode node, each beside plain aio-pika in the same run.

Source: ``--messages`` JSON readings wait in the source's queue; the source consumes them (prefetch
``--prefetch``), maps each to a ``Samples`` and acknowledges it when the next event is asked for, as
under the edge node. Baseline: a plain aio-pika consumer on an identical queue that only decodes the
JSON and acknowledges. Messages/s, CPU of this process (user+sys) and % of a core per 1k messages/s.
Then latency: readings published at ``--rate``/s, each stamped with its send time, until the source
yields its ``Samples`` (publish -> RabbitNode -> source -> edge engine hand-off), p50/p99.

Sink: the AMQP writer publishes batches of ``--batch`` sample rows with publisher confirms
(confirmed messages/s, and the p50/p99 time until a batch is confirmed); baseline: the same bodies
and properties, built before the clock starts, published by plain aio-pika with confirms, one
gather per batch: the difference is the writer's own work (keys, envelopes, ids, confirm tracking).

    uv run python -m bench.amqp [--messages 20000] [--batch 1000] [--rate 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import aio_pika
import orjson

from bench.pg_sink import _batches, _messages
from bridges.amqp import AmqpSource
from bridges.source import Samples
from model.bridges.amqp import AmqpBridgeConfig
from model.sinks import AmqpSinkConfig
from tests.fixtures.rabbitmq import RabbitNode, run_rabbitmq
from uns.clock import now_ms
from uns.connect import network_clients
from uns.historian.store import Batch
from uns.mqtt.types import BrokerUrl
from uns.sinks.amqp import AmqpWriter


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _config(node: RabbitNode, name: str, prefetch: int, *, stamped: bool = False) -> AmqpBridgeConfig:
    metrics: list[dict[str, str]] = [
        {"path": "$.a", "name": "A"},
        {"path": "$.b", "name": "B", "type": "Int32"},
        {"path": "$.c", "name": "C"},
    ]
    if stamped:  # the send time travels as a metric, so the latency is read off the Samples
        metrics.append({"path": "$.sent_ns", "name": "SentNs", "type": "Int64"})
    return AmqpBridgeConfig.model_validate(
        {
            "name": "bench",
            "edge": {"group": "bench"},
            "url": node.url,
            "exchange": f"{name}-x",
            "queue": name,
            "prefetch": prefetch,
            "routes": [{"devices": [{"id": "machine", "metrics": metrics}]}],
        }
    )


def _body(i: int) -> bytes:
    return orjson.dumps({"a": i * 0.5, "b": i % 1000, "c": float(i % 7), "sent_ns": time.perf_counter_ns()})


async def _fill(node: RabbitNode, exchange: str, count: int) -> None:
    async with await aio_pika.connect(node.url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        for start in range(0, count, 1000):
            await asyncio.gather(
                *(target.publish(aio_pika.Message(_body(i)), "m") for i in range(start, min(count, start + 1000)))
            )


async def _source(node: RabbitNode, name: str, count: int, prefetch: int) -> tuple[float, float]:
    config = _config(node, name, prefetch)
    with tempfile.TemporaryDirectory() as directory:
        source = AmqpSource(config=config, clients=network_clients(BrokerUrl(port=1)), data_dir=Path(directory))
        async with source:
            events = source.events()
            async for _ in events:  # the first event: connected, queue declared
                if source.link.up:
                    break
            await _fill(node, config.exchange, count)
            got = 0
            started, cpu = time.perf_counter(), _cpu_s()
            async for event in events:
                if isinstance(event, Samples) and event.device == "machine":
                    got += 1
                    if got == count:
                        break
            elapsed, used = time.perf_counter() - started, _cpu_s() - cpu
            await events.aclose()
    return elapsed, used


async def _baseline(node: RabbitNode, name: str, count: int, prefetch: int) -> tuple[float, float]:
    async with await aio_pika.connect(node.url) as connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        exchange = await channel.declare_exchange(f"{name}-x", aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(name, durable=True)
        await queue.bind(exchange, "#")
        await _fill(node, f"{name}-x", count)
        got = 0
        started, cpu = time.perf_counter(), _cpu_s()
        async with queue.iterator() as messages:
            async for message in messages:
                orjson.loads(message.body)
                await message.ack()
                got += 1
                if got == count:
                    break
        return time.perf_counter() - started, _cpu_s() - cpu


async def _latency(node: RabbitNode, name: str, rate: int, seconds: float) -> list[float]:
    config = _config(node, name, 100, stamped=True)
    delays: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        source = AmqpSource(config=config, clients=network_clients(BrokerUrl(port=1)), data_dir=Path(directory))
        async with source, await aio_pika.connect(node.url) as connection:
            events = source.events()
            async for _ in events:
                if source.link.up:
                    break
            channel = await connection.channel(publisher_confirms=False)
            exchange = await channel.get_exchange(config.exchange)
            total = int(rate * seconds)

            async def send() -> None:
                for i in range(total):
                    await exchange.publish(aio_pika.Message(_body(i)), "m")
                    await asyncio.sleep(1 / rate)

            sender = asyncio.create_task(send(), name="bench.send")
            async for event in events:
                if isinstance(event, Samples) and event.device == "machine":
                    now = time.perf_counter_ns()
                    sent = next(s.value for s in event.samples if s.name == "SentNs")
                    assert isinstance(sent, int)  # mapped as Int64
                    delays.append((now - sent) / 1e9)
                    if len(delays) == total:
                        break
            await sender
            await events.aclose()
    return delays


async def _sink_queue(node: RabbitNode, exchange: str) -> None:
    """A durable queue bound to every key of ``exchange`` (emptied first): confirms then wait for its disk writes."""
    async with await aio_pika.connect(node.url) as connection:
        channel = await connection.channel()
        target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(f"{exchange}-q", durable=True)
        await queue.bind(target, "#")
        await queue.purge()


async def _sink(node: RabbitNode, batches: list[Batch]) -> tuple[float, float, list[float]]:
    config = AmqpSinkConfig.model_validate({"kind": "amqp", "name": "bench", "url": node.url, "exchange": "bench-sink"})
    writer = AmqpWriter(config=config)
    await writer.connect()
    await _sink_queue(node, "bench-sink")
    waits: list[float] = []
    try:
        started, cpu = time.perf_counter(), _cpu_s()
        for batch in batches:
            at = time.perf_counter()
            await writer.write(batch, sink="bench")
            waits.append(time.perf_counter() - at)
        return time.perf_counter() - started, _cpu_s() - cpu, waits
    finally:
        await writer.aclose()


def _same_messages(batch: Batch) -> list[aio_pika.Message]:
    """What the writer sends for ``batch`` (body and properties), built up front for the baseline."""
    out: list[aio_pika.Message] = []
    for row in batch.samples:
        body = {"value": row.value, "timestamp_ms": row.ts_ms, "quality": row.quality, "datatype": row.datatype}
        key = hashlib.blake2b(orjson.dumps([row.topic, row.ts_ms, row.value]), digest_size=8).hexdigest()
        out.append(
            aio_pika.Message(
                orjson.dumps(body),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=key,
                timestamp=row.ts_ms / 1000,
                headers={"uns-topic": row.topic},
            )
        )
    return out


async def _sink_baseline(node: RabbitNode, batches: list[Batch]) -> tuple[float, float, list[float]]:
    """Plain aio-pika publishing the writer's bodies and properties, made before the clock starts."""
    ready = [_same_messages(batch) for batch in batches]
    async with await aio_pika.connect(node.url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange("bench-plain", aio_pika.ExchangeType.TOPIC, durable=True)
        await _sink_queue(node, "bench-plain")
        waits: list[float] = []
        started, cpu = time.perf_counter(), _cpu_s()
        for messages in ready:
            at = time.perf_counter()
            await asyncio.gather(*(exchange.publish(m, "acme.s.a.l.c.data.m", mandatory=False) for m in messages))
            waits.append(time.perf_counter() - at)
        return time.perf_counter() - started, _cpu_s() - cpu, waits


def _line(what: str, count: int, elapsed: float, cpu: float) -> float:
    rate = count / elapsed
    share = cpu / elapsed
    print(f"  {what:<30} {rate:>9,.0f} msg/s   CPU {share:6.1%}   {share / rate * 1e5:6.2f} % of a core per 1k msg/s")
    return rate


def _pcts(what: str, values: list[float]) -> None:
    ordered = sorted(values)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"  {what:<30} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   ({len(values)} samples)")


async def _main(args: argparse.Namespace) -> None:
    with run_rabbitmq() as node:
        print(f"RabbitMQ {node.url}: {args.messages:,} messages, prefetch {args.prefetch}, {args.rounds} rounds (best)")
        best: dict[str, float] = {}
        for round_ in range(args.rounds):
            for what, run in (
                ("plain aio-pika consumer", _baseline(node, f"plain{round_}", args.messages, args.prefetch)),
                ("AMQP source", _source(node, f"source{round_}", args.messages, args.prefetch)),
            ):
                elapsed, cpu = await run
                best[what] = max(best.get(what, 0.0), _line(what, args.messages, elapsed, cpu))
        print(f"  source / baseline: {best['AMQP source'] / best['plain aio-pika consumer']:.2f}x")
        print(f"latency at {args.rate}/s for {args.seconds:g} s (publish to the source's Samples):")
        _pcts("AMQP source", await _latency(node, "latency", args.rate, args.seconds))
        batches = _batches(_messages(1000, args.messages, now_ms() - 3_600_000), args.batch)
        print(f"sink: {args.messages:,} sample rows in batches of {args.batch}, publisher confirms, persistent")
        sink_best: dict[str, float] = {}
        for _ in range(args.rounds):
            for what, sink_run in (
                ("plain aio-pika, confirms", _sink_baseline(node, batches)),
                ("AMQP sink writer", _sink(node, batches)),
            ):
                elapsed, cpu, waits = await sink_run
                sink_best[what] = max(sink_best.get(what, 0.0), _line(what, args.messages, elapsed, cpu))
                _pcts(f"{what}: batch confirmed", waits)
        print(f"  writer / baseline: {sink_best['AMQP sink writer'] / sink_best['plain aio-pika, confirms']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--prefetch", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
