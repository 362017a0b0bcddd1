"""Measure the embedded broker's in-process paths.

1. ingest: a raw-socket QoS 0 publisher (its own process) -> broker -> LocalClient (the Sparkplug host's path);
2. retained: LocalClient.publish_many with retain=True, without and with a network subscriber (own process).

Run: ``uv run python -m bench.broker_paths [--messages 100000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from model.broker_config import BrokerFileConfig
from uns.broker.embedded import EmbeddedBroker
from uns.mqtt.codec import encode_connect, encode_disconnect, encode_publish, encode_subscribe
from uns.mqtt.types import Message

_PAYLOAD = bytes(60)  # about a Sparkplug NDATA with a few metrics


def run_publisher(port: int, count: int) -> None:
    """Subprocess: connect and push ``count`` QoS 0 PUBLISHes as fast as the socket takes them."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(encode_connect(client_id="bench-pub", keepalive_s=0))
        assert sock.recv(4) == b"\x20\x02\x00\x00"
        batch = b"".join(encode_publish(f"spBv1.0/bench/NDATA/node{i % 50}", _PAYLOAD) for i in range(1000))
        for _ in range(count // 1000):
            sock.sendall(batch)
        sock.sendall(encode_disconnect())


def run_subscriber(port: int, count: int, topic_filter: str) -> None:
    """Subprocess: subscribe, print "ready", then read until ``count`` PUBLISHes arrived; print the seconds."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(encode_connect(client_id="bench-sub", keepalive_s=0))
        assert sock.recv(4) == b"\x20\x02\x00\x00"
        sock.sendall(encode_subscribe(1, [(topic_filter, 0)]))
        buffer = sock.recv(5)
        assert buffer[:1] == b"\x90", buffer
        print("ready", flush=True)
        seen, data, started = 0, b"", 0.0
        while seen < count:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            if not started:
                started = time.perf_counter()
            data += chunk
            offset = 0
            while True:  # count whole packets in the buffer
                if len(data) - offset < 2:
                    break
                length, shift, index = 0, 0, offset + 1
                while index < len(data):
                    byte = data[index]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    index += 1
                    if not byte & 0x80:
                        break
                else:
                    break
                if index + length > len(data):
                    break
                seen += (data[offset] >> 4) == 3
                offset = index + length
            data = data[offset:]
        print(f"{time.perf_counter() - started:.6f} {seen}", flush=True)


def _child(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bench.broker_paths", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


async def bench_ingest(broker: EmbeddedBroker, count: int) -> float:
    """Messages/s from a socket publisher into a LocalClient."""
    host = broker.local_client("bench-host")
    await host.subscribe(["spBv1.0/#"], qos=0)
    child = _child("--publisher", str(broker.url.port), str(count))
    received, started = 0, 0.0
    async for _message in host.messages():
        if not received:
            started = time.perf_counter()
        received += 1
        if received == count:
            break
    elapsed = time.perf_counter() - started
    await asyncio.to_thread(child.wait)
    await host.close()
    return count / elapsed


async def bench_retained(broker: EmbeddedBroker, count: int, *, subscriber: bool) -> tuple[float, float | None]:
    """publish_many rate into the retained store; with a subscriber also the rate it receives at."""
    prefix = "with-sub" if subscriber else "alone"  # fresh topics: no retained backlog sent on subscribe
    child = None
    if subscriber:
        child = _child("--subscriber", str(broker.url.port), str(count), f"{prefix}/#")
        assert child.stdout is not None
        assert (await asyncio.to_thread(child.stdout.readline)).strip() == "ready"
    writer = broker.local_client(f"bench-writer-{subscriber}")
    batch = 1000
    messages = [
        [
            Message(topic=f"{prefix}/site/area/line{i % 10}/cell{j % 20}/data/m{j}", payload=_PAYLOAD, retain=True)
            for j in range(i * batch, (i + 1) * batch)
        ]
        for i in range(count // batch)
    ]
    started = time.perf_counter()
    for chunk in messages:
        await writer.publish_many(chunk)
    publish_rate = count / (time.perf_counter() - started)
    received_rate = None
    if child is not None:
        assert child.stdout is not None
        line = await asyncio.to_thread(child.stdout.readline)
        seconds, seen = line.split()
        assert int(seen) == count, line
        received_rate = count / float(seconds)
        await asyncio.to_thread(child.wait)
    await writer.close()
    return publish_rate, received_rate


async def _main(count: int) -> None:
    config = BrokerFileConfig.model_validate(
        {"listeners": {"tcp": {"port": 0}}, "allow_anonymous": True, "anonymous_role": "admin"}
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedBroker(config=config, data_dir=Path(tmp)) as broker:
            ingest = await bench_ingest(broker, count)
            print(f"ingest  socket QoS0 -> LocalClient: {ingest:>10,.0f} msg/s ({count} messages)")
            alone, _ = await bench_retained(broker, count, subscriber=False)
            print(f"retained publish_many, no network subscriber: {alone:>10,.0f} msg/s")
            with_sub, received = await bench_retained(broker, count, subscriber=True)
            print(f"retained publish_many, one network subscriber: {with_sub:>10,.0f} msg/s")
            print(f"  ... that subscriber received at {received:>10,.0f} msg/s")
            print(f"stats: {broker.stats}")


def main() -> None:
    """Parse arguments; also the entry of the publisher and subscriber subprocesses."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000, help="messages per measurement (multiple of 1000)")
    parser.add_argument("--publisher", nargs=2, metavar=("PORT", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--subscriber", nargs=3, metavar=("PORT", "COUNT", "FILTER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        run_publisher(int(args.publisher[0]), int(args.publisher[1]))
    elif args.subscriber:
        run_subscriber(int(args.subscriber[0]), int(args.subscriber[1]), args.subscriber[2])
    else:
        asyncio.run(_main(args.messages))


if __name__ == "__main__":
    main()
