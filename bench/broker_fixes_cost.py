"""Benchmark: what the conformance fixes cost. The same load through plain amqtt 0.12.1 and through
the embedded broker (uns/broker), each in its own process, in one run.

A publisher process sends N messages (QoS 0, then QoS 1) to one topic; a subscriber (this process,
our client) receives them. Prints messages/s delivered, messages lost, and our/plain ratio; the
target is that the fixes cost no more than 10 %.

    uv run python -m bench.broker_fixes_cost [--messages 100000] [--payload 60]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.connection
import tempfile
import time
from pathlib import Path

from amqtt.broker import Broker

from tests.fixtures.broker import broker_test_config
from uns.broker import EmbeddedBroker
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message

_TOPIC = "bench/fixes"


async def _serve_plain(conn: multiprocessing.connection.Connection) -> None:
    config = {
        "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:0"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    conn.send(broker._servers["default"].instance.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


async def _serve_ours(conn: multiprocessing.connection.Connection) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedBroker(config=broker_test_config(), data_dir=Path(tmp)) as broker:
            conn.send(broker.url.port)
            await broker.run()


def _broker_main(kind: str, conn: multiprocessing.connection.Connection) -> None:
    asyncio.run(_serve_plain(conn) if kind == "plain" else _serve_ours(conn))


async def _publish(port: int, count: int, size: int, qos: int) -> None:
    url = BrokerUrl(host="127.0.0.1", port=port)
    payload = b"x" * size
    async with MqttClient(url=url, client_id=f"bench-pub-{qos}", max_inflight=500) as client:
        batch = [Message(_TOPIC, payload, qos, False)] * 500
        for _ in range(count // 500):
            await client.publish_many(batch)


def _publisher_main(port: int, count: int, size: int, qos: int) -> None:
    asyncio.run(_publish(port, count, size, qos))


async def _measure(port: int, count: int, size: int, qos: int) -> tuple[float, int]:
    url = BrokerUrl(host="127.0.0.1", port=port)
    received = 0
    async with MqttClient(url=url, client_id=f"bench-sub-{qos}", max_queued=1_000_000) as client:
        await client.subscribe([_TOPIC], qos=qos)
        publisher = multiprocessing.Process(target=_publisher_main, args=(port, count, size, qos), daemon=True)
        started = time.monotonic()
        last = started
        publisher.start()
        messages = client.messages()
        try:
            while received < count:
                async with asyncio.timeout(5):  # 5 s without a message: the rest is lost
                    await anext(messages)
                received += 1
                last = time.monotonic()
        except TimeoutError:
            pass
        await asyncio.to_thread(publisher.join)
    return received / max(last - started, 1e-9), count - received


def _run(kind: str, count: int, size: int) -> dict[int, tuple[float, int]]:
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_broker_main, args=(kind, child), daemon=True)
    server.start()
    try:
        port = parent.recv()
        return {qos: asyncio.run(_measure(port, count, size, qos)) for qos in (0, 1)}
    finally:
        server.terminate()
        server.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--payload", type=int, default=60, help="payload bytes")
    args = parser.parse_args()
    results = {kind: _run(kind, args.messages, args.payload) for kind in ("plain", "ours")}
    print(
        f"{args.messages} messages of {args.payload} bytes, one publisher process -> broker process -> one subscriber"
    )
    print(f"{'broker':>14} {'QoS 0 msg/s':>12} {'lost':>6} {'QoS 1 msg/s':>12} {'lost':>6}")
    for kind, label in (("plain", "plain amqtt"), ("ours", "uns/broker")):
        (r0, l0), (r1, l1) = results[kind][0], results[kind][1]
        print(f"{label:>14} {r0:>12.0f} {l0:>6} {r1:>12.0f} {l1:>6}")
    for qos in (0, 1):
        ratio = results["ours"][qos][0] / results["plain"][qos][0]
        print(f"QoS {qos}: uns/broker / plain amqtt = {ratio:.2f}x ({(ratio - 1) * 100:+.0f} %)")


if __name__ == "__main__":
    main()
