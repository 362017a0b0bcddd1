"""MQTT client throughput: our client vs paho, same process, same Mosquitto.

Measures, on one core each:
  publish   QoS 0 encode+write rate (publish_many batches and single publish calls), then the rate
            including the broker's PUBACK of a final QoS 1 message (everything before it was taken);
  parse     the pure codec decoding a buffer of PUBLISH packets;
  receive   a burst of retained messages Mosquitto sends on SUBSCRIBE, decoded into Message objects
            and taken from ``messages()`` (paho: counted in on_message).

Usage: uv run python -m bench.mqtt_client [--count 300000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.mosquitto import run_mosquitto
from uns.mqtt.client import MqttClient
from uns.mqtt.codec import PacketReader, encode_publish
from uns.mqtt.types import BrokerUrl, Message

__all__ = ["main"]

_PAYLOAD = b'{"value": 72.4, "timestamp_ms": 1764000000123, "quality": "good", "datatype": "Float"}'


def _topic(i: int) -> str:
    return f"acme/dallas/packaging/line{i % 10}/cell{i % 100}/data/Metric{i % 1000}"


def _report(name: str, count: int, seconds: float) -> None:
    print(f"{name:<48} {count / seconds:>12,.0f} msgs/s  ({count:,} in {seconds:.2f} s)")


async def _ours_publish(url: BrokerUrl, count: int, batch: int) -> None:
    messages = [Message(_topic(i), _PAYLOAD) for i in range(batch)]
    async with MqttClient(url=url, client_id="bench-ours-pub") as client:
        start = time.perf_counter()
        for _ in range(count // batch):
            await client.publish_many(messages)
        written = time.perf_counter() - start
        await client.publish("bench/fence", b"", qos=1)
        acked = time.perf_counter() - start
        _report("ours publish_many qos0 (encode+write)", count, written)
        _report("ours publish_many qos0 (until broker ack)", count, acked)

        single = count // 3
        start = time.perf_counter()
        for i in range(single):
            await client.publish(_topic(i), _PAYLOAD)
        written = time.perf_counter() - start
        await client.publish("bench/fence", b"", qos=1)
        _report("ours publish() qos0 (encode+write)", single, written)
        _report("ours publish() qos0 (until broker ack)", single, time.perf_counter() - start)


def _paho_publish(port: int, count: int) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho-pub")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        count //= 3  # paho is slow: a third keeps the run short
        start = time.perf_counter()
        for i in range(count):
            client.publish(_topic(i), _PAYLOAD)
        written = time.perf_counter() - start
        client.publish("bench/fence", b"", qos=1).wait_for_publish(60)
        _report("paho publish() qos0 (publish calls)", count, written)
        _report("paho publish() qos0 (until broker ack)", count, time.perf_counter() - start)
    finally:
        client.disconnect()
        client.loop_stop()


def _parse(count: int) -> None:
    chunk = b"".join(encode_publish(_topic(i), _PAYLOAD) for i in range(1000))
    reader = PacketReader()
    start = time.perf_counter()
    for _ in range(count // 1000):
        for offset in range(0, len(chunk), 65536):  # socket-sized reads, packets split across them
            reader.feed(chunk[offset : offset + 65536])
    _report("codec PacketReader.feed (pure parse)", count, time.perf_counter() - start)


async def _retain(url: BrokerUrl, count: int) -> None:
    async with MqttClient(url=url, client_id="bench-retain") as client:
        for start in range(0, count, 10_000):
            await client.publish_many(
                [Message(f"burst/{i}", _PAYLOAD, retain=True) for i in range(start, min(count, start + 10_000))]
            )
        await client.publish("bench/fence", b"", qos=1)


async def _ours_receive(url: BrokerUrl, count: int) -> None:
    async with MqttClient(url=url, client_id="bench-ours-sub") as client:
        start = time.perf_counter()
        await client.subscribe(["burst/#"], qos=0)
        got = 0
        async for _message in client.messages():
            got += 1
            if got == count:
                break
        _report("ours receive (socket -> Message via messages())", count, time.perf_counter() - start)


def _paho_receive(port: int, count: int) -> None:
    done = threading.Event()
    got = 0

    def on_message(_client: paho.Client, _userdata: object, _message: paho.MQTTMessage) -> None:
        nonlocal got
        got += 1
        if got == count:
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho-sub")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        start = time.perf_counter()
        client.subscribe("burst/#", qos=0)
        if not done.wait(120):
            raise RuntimeError(f"paho got {got} of {count} retained messages")
        _report("paho receive (on_message)", count, time.perf_counter() - start)
    finally:
        client.disconnect()
        client.loop_stop()


def main() -> None:
    """Run every measurement against one Mosquitto and print msgs/s."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300_000, help="messages per measurement")
    parser.add_argument("--batch", type=int, default=1000, help="messages per publish_many call")
    args = parser.parse_args()
    with run_mosquitto() as broker:
        url = BrokerUrl.from_str(broker.url)
        asyncio.run(_ours_publish(url, args.count, args.batch))
        _paho_publish(broker.port, args.count)
        _parse(args.count)
        burst = min(args.count, 100_000)
        asyncio.run(_retain(url, burst))
        asyncio.run(_ours_receive(url, burst))
        _paho_receive(broker.port, burst)


if __name__ == "__main__":
    main()
