"""Benchmark: rule trigger-to-action latency, p50/p99, against a plain MQTT echo client in the same run.

Each round trip publishes one value on an input topic of the embedded broker (port 0) and waits for
the action's message on the output topic; the next value goes out only after it arrived, so this is
latency, not throughput under queueing. Cases, each ``--messages`` round trips:

- ``echo client (baseline)``: a client of ours that subscribes to the input and republishes each
  payload on the output: the same two broker hops as a rule, with no rule engine.
- ``rule: topic -> publish``: a ``topic`` trigger and a templated ``publish`` action.
- ``rule: value -> publish (cond)``: a ``value`` trigger (``above``, hysteresis) alternating past and
  back, with a condition in the expression language, and a ``publish`` action on each firing.
- ``rule: topic -> webhook``: a ``topic`` trigger and a ``webhook`` to a uvicorn receiver on 127.0.0.1;
  timed to the receiver's arrival (one broker hop and one HTTP request).

Also printed: the ratio of each p50 to the baseline's.

    uv run python -m bench.rules [--messages 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.rules import Rule
from tests.fixtures.asgi import serve
from tests.fixtures.broker import start_broker
from uns.broker.embedded import EmbeddedBroker
from uns.connect import network_clients
from uns.mqtt.types import PubSub
from uns.rules.engine import RuleEngine

__all__ = ["main"]

_RULES = TypeAdapter(list[Rule])
_IN = "acme/dallas/bottling/line1/filler/data/In"
_OUT = "acme/dallas/bottling/line1/filler/kpi/Out"


def _pcts(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


async def _round_trips(
    publisher: PubSub, messages: int, arrived: asyncio.Queue[None], value: Callable[[int], float]
) -> list[float]:
    times: list[float] = []
    for i in range(messages + 50):  # the first 50 warm up
        start = time.perf_counter()
        await publisher.publish(_IN, orjson.dumps({"value": value(i)}), qos=0)
        await asyncio.wait_for(arrived.get(), 10)
        if i >= 50:
            times.append(time.perf_counter() - start)
    return times


@contextlib.asynccontextmanager
async def _listener(broker: EmbeddedBroker, topic: str, arrived: asyncio.Queue[None]) -> AsyncIterator[PubSub]:
    async with network_clients(broker.url)(client_id="bench-rules-listener") as client:
        await client.subscribe([topic], qos=0)

        async def read() -> None:
            async for _message in client.messages():
                arrived.put_nowait(None)

        task = asyncio.create_task(read(), name="bench.rules.listener")
        try:
            yield client
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def _echo(broker: EmbeddedBroker) -> AsyncIterator[None]:
    async with network_clients(broker.url)(client_id="bench-rules-echo") as client:
        await client.subscribe([_IN], qos=0)

        async def run() -> None:
            async for message in client.messages():
                await client.publish(_OUT, message.payload, qos=0)

        task = asyncio.create_task(run(), name="bench.rules.echo")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def _engine(broker: EmbeddedBroker, rules: list[object]) -> AsyncIterator[None]:
    engine = RuleEngine(rules=_RULES.validate_python(rules), clients=network_clients(broker.url))
    async with engine:
        task = asyncio.create_task(engine.run(), name="bench.rules.engine")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _publish_rule(trigger: dict[str, object], **extra: object) -> list[object]:
    action = {"kind": "publish", "topic": _OUT, "payload": {"value": "${value}", "from": "${topic}"}, "qos": 0}
    return [{"name": "bench", "trigger": trigger, "actions": [action], **extra}]


async def _case(
    broker: EmbeddedBroker, messages: int, runner: Callable[[], contextlib.AbstractAsyncContextManager[None]]
) -> list[float]:
    queue = asyncio.Queue[None]()
    publishing = network_clients(broker.url)(client_id="bench-rules-publisher")
    async with _listener(broker, _OUT, queue), runner(), publishing as publisher:
        return await _round_trips(publisher, messages, queue, float)


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with start_broker(Path(tmp)) as broker:
            print(f"embedded broker {broker.url}: {args.messages:,} round trips per case (after 50 warm-up)")
            results: dict[str, list[float]] = {}
            results["echo client (baseline)"] = await _case(broker, args.messages, lambda: _echo(broker))
            topic_rule = _publish_rule({"kind": "topic", "filter": _IN})
            results["rule: topic -> publish"] = await _case(broker, args.messages, lambda: _engine(broker, topic_rule))
            value_rule = _publish_rule(
                {"kind": "value", "topic": _IN, "above": 50, "hysteresis": 5}, condition="value < 1000"
            )
            # a value fires once past the limit: each round trip first sends it back (a clear), untimed
            results["rule: value -> publish (cond)"] = await _value_round_trips(broker, args.messages, value_rule)
            results["rule: topic -> webhook"] = await _webhook_case(broker, args.messages)
    base_p50, _ = _pcts(results["echo client (baseline)"])
    for name, values in results.items():
        p50, p99 = _pcts(values)
        print(f"  {name:<32} p50 {p50:6.3f} ms   p99 {p99:6.3f} ms   p50 {p50 / base_p50:4.2f}x baseline")


async def _value_round_trips(broker: EmbeddedBroker, messages: int, rules: list[object]) -> list[float]:
    arrived = asyncio.Queue[None]()
    times: list[float] = []
    publishing = network_clients(broker.url)(client_id="bench-rules-publisher")
    async with _listener(broker, _OUT, arrived), _engine(broker, rules), publishing as publisher:
        for i in range(messages + 50):
            await publisher.publish(_IN, orjson.dumps({"value": 0.0}), qos=0)  # back past the band: clears
            start = time.perf_counter()
            await publisher.publish(_IN, orjson.dumps({"value": 100.0}), qos=0)  # past the limit: fires
            await asyncio.wait_for(arrived.get(), 10)
            if i >= 50:
                times.append(time.perf_counter() - start)
    return times


async def _webhook_case(broker: EmbeddedBroker, messages: int) -> list[float]:
    arrived = asyncio.Queue[None]()

    async def take(request: Request) -> Response:
        await request.body()
        arrived.put_nowait(None)
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook", take, methods=["POST"])])
    async with serve(app) as base:
        rules: list[object] = [
            {
                "name": "bench",
                "trigger": {"kind": "topic", "filter": _IN},
                "actions": [{"kind": "webhook", "url": f"{base}/hook", "body": {"value": "${value}"}}],
            }
        ]
        publishing = network_clients(broker.url)(client_id="bench-rules-publisher")
        async with _engine(broker, rules), publishing as publisher:
            return await _round_trips(publisher, messages, arrived, float)


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=2000, help="round trips per case")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
