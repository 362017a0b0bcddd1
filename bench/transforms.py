"""Benchmark: 1,000 computed tags over 10k topics updating at 10k messages/s, beside a plain subscriber.

Each of the ``--tags`` tags reads 10 of the ``--topics`` input topics (every topic is read by one
tag) through an expression mixing arithmetic, a unit conversion, ``min``, a condition and the
stateful ``avg``/``delta``, so each message on an input topic is one evaluation.

Core: the same envelopes given to the engine's ``on_message`` (decode, convert, evaluate, encode
the result when it changed) and, as the baseline, only decoded with orjson and their value looked up,
in the same run: µs per message, and CPU % of a core per 1k evaluations/s.

Broker: Mosquitto (its own process), a publisher sending envelopes round-robin over the topics at
``--rate``/s for ``--seconds``, and as the consumer first a plain subscriber client of the same
10k topics decoding every envelope (baseline), then the ``ComputedTags`` service; this process's
CPU (publisher and consumer) for each, and the difference per 1k evaluations/s. (The embedded
broker matches a topic seen for the first time against every filter, so 10k exact subscriptions
make its first pass over 10k topics take minutes: see docs/transforms.md.)

    uv run python -m bench.transforms [--tags 1000] [--topics 10000] [--rate 10000] [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import time
from collections.abc import Callable

import orjson

from model.transforms import ComputedTag
from tests.fixtures.mosquitto import run_mosquitto
from uns.connect import network_clients
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message
from uns.transforms.engine import Engine
from uns.transforms.plan import plan_tags
from uns.transforms.service import ComputedTags

__all__ = ["main"]

_EXPRESSION = 'round((a0 + a1 + a2 + a3 + a4) / 5 - min(a5, a6), 3) if a7 > 0 else avg(a8, "1m") + delta(a9)'


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _topic(i: int) -> str:
    return f"acme/bench/area{i % 10}/line{i % 100}/cell{i}/data/Value"


def _tags(count: int) -> list[ComputedTag]:
    tags = []
    for n in range(count):
        inputs: dict[str, object] = {f"a{k}": _topic(n * 10 + k) for k in range(10)}
        inputs["a0"] = {"topic": _topic(n * 10), "unit": "degF", "source_unit": "degC"}
        tags.append(
            ComputedTag.model_validate(
                {"name": f"Computed{n}", "path": f"acme/bench/out/tag{n}", "expression": _EXPRESSION, "inputs": inputs}
            )
        )
    return tags


def _payloads(topics: int, rounds: int) -> list[tuple[str, bytes]]:
    out = []
    for r in range(rounds):
        for i in range(topics):
            body = {"value": 20.0 + (i * 7 + r * 13) % 50 / 10, "timestamp_ms": 1_764_000_000_000 + r * 1000 + i % 1000,
                    "quality": "good", "datatype": "Double", "unit": "degC"}  # fmt: skip
            out.append((_topic(i), orjson.dumps(body)))
    return out


def _core(args: argparse.Namespace) -> None:
    plans = plan_tags(_tags(args.tags), plant=None)
    messages = _payloads(args.topics, 5)
    engine = Engine(plans)
    for topic, payload in messages[: args.topics]:  # every tag has all its inputs
        engine.on_message(topic, payload, now_ms=0)
    base, core = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _topic, payload in messages:
            body = orjson.loads(payload)
            _ = body["value"], body["quality"], body["timestamp_ms"]
        base.append((time.perf_counter() - start) / len(messages) * 1e6)
        start = time.perf_counter()
        for topic, payload in messages:
            engine.on_message(topic, payload, now_ms=0)
        core.append((time.perf_counter() - start) / len(messages) * 1e6)
    b, c = statistics.median(base), statistics.median(core)
    print(f"core: {len(messages)} messages x {args.rounds} rounds, {args.tags} tags over {args.topics} topics")
    print(f"  decode only (baseline): {b:6.2f} us/message")
    print(f"  engine (decode+evaluate+encode): {c:6.2f} us/evaluation  = {c / 10:.2f} % of a core per 1k evaluations/s"
          f"  ({c / b:.1f}x the decode alone)")  # fmt: skip


class _Plain:
    """The baseline consumer: decodes every envelope it receives."""

    name = "plain"

    def __init__(self, client: MqttClient) -> None:
        self.client = client
        self.received = 0

    async def run(self) -> None:
        async for message in self.client.messages():
            body = orjson.loads(message.payload)
            _ = body["value"], body["quality"], body["timestamp_ms"]
            self.received += 1


async def _publish(url: BrokerUrl, messages: list[tuple[str, bytes]], rate: float, seconds: float) -> int:
    total = int(rate * seconds)
    batch = max(1, int(rate / 100))  # one batch every 10 ms
    async with MqttClient(url=url, client_id="bench-publisher") as pub:
        start = time.perf_counter()
        sent = 0
        while sent < total:
            chunk = [Message(t, p) for t, p in messages[sent % len(messages) : sent % len(messages) + batch]]
            await pub.publish_many(chunk)
            sent += len(chunk)
            ahead = start + sent / rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
    return sent


async def _until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _broker_round(args: argparse.Namespace, url: BrokerUrl, plain: bool) -> tuple[float, int, int, float]:
    """(CPU seconds, messages received, evaluations, wall seconds) of one round."""
    messages = _payloads(args.topics, 1)
    topics = sorted({t for t, _ in messages})
    async with contextlib.AsyncExitStack() as stack:
        if plain:
            client = await stack.enter_async_context(MqttClient(url=url, client_id="bench-plain"))
            await client.subscribe(topics, qos=0)
            plain_consumer = _Plain(client)
            consumer: _Plain | ComputedTags = plain_consumer
            counts: Callable[[], tuple[int, int]] = lambda: (plain_consumer.received, 0)  # noqa: E731
        else:
            service = await stack.enter_async_context(
                ComputedTags(tags=_tags(args.tags), plant=None, clients=network_clients(url), enterprise="acme")
            )
            consumer = service
            counts = lambda: _service_counts(service)  # noqa: E731
        task = asyncio.create_task(consumer.run())
        try:
            await asyncio.sleep(0.5)
            cpu0, wall0 = _cpu_s(), time.perf_counter()
            sent = await _publish(url, messages, args.rate, args.seconds)
            await _until(lambda: counts()[0] >= sent, 30)
            cpu, wall = _cpu_s() - cpu0, time.perf_counter() - wall0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    received, evaluations = counts()
    return cpu, received, evaluations, wall


def _service_counts(service: ComputedTags) -> tuple[int, int]:
    health = service.health()
    computed = health["computed"]
    assert isinstance(computed, dict)
    return int(str(health["received"])), sum(int(tag["evaluations"]) for tag in computed.values())


async def _broker(args: argparse.Namespace) -> None:
    plain, tags = [], []
    with run_mosquitto() as mosquitto:
        url = BrokerUrl.from_str(mosquitto.url)
        for _ in range(args.rounds):
            plain.append(await _broker_round(args, url, True))
            tags.append(await _broker_round(args, url, False))
    # CPU per message of the plain run, per message and per evaluation of the computed tags' run
    p_us = statistics.median(cpu / received * 1e6 for cpu, received, _, _ in plain)
    t_us = statistics.median(cpu / received * 1e6 for cpu, received, _, _ in tags)
    own = statistics.median(
        (cpu - p_us * received / 1e6) / evaluations * 1e6 for cpu, received, evaluations, _ in tags if evaluations
    )
    print(f"broker: {args.rate:.0f} messages/s for {args.seconds} s over {args.topics} topics, {args.rounds} rounds")
    print(
        f"  plain subscriber (baseline): {p_us:5.1f} us CPU per message (publisher + consumer), {plain[-1][1]} received"
    )
    print(f"  computed tags:               {t_us:5.1f} us CPU per message, {tags[-1][2]} evaluations"
          f" of {tags[-1][1]} messages ({t_us / p_us:.2f}x the baseline)")  # fmt: skip
    print(f"  computed tags' own cost: {own:.1f} us per evaluation = {own / 10:.2f} % of a core per 1k evaluations/s")


def main() -> None:
    """Parse the arguments and run."""
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--topics", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.topics < args.tags * 10:
        parser.error("--topics must be at least 10 x --tags (each tag reads 10 topics)")
    _core(args)
    asyncio.run(_broker(args))


if __name__ == "__main__":
    main()
