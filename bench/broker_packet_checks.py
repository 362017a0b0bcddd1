"""Benchmark: what the malformed-packet checks (uns/broker/packets.py) cost on the PUBLISH path.

One embedded broker in this process; a raw-socket publisher (a thread) sends N QoS 0 PUBLISHes
as fast as the socket takes them, an in-process subscriber counts them. Rounds alternate the
checks on and off (the baseline: the hook is called but checks nothing), best round of each reported,
with the ratio. Then the checks alone: microseconds per PUBLISH and per SUBSCRIBE header+body check.

    uv run python -m bench.broker_packet_checks [--messages 20000] [--rounds 3] [--payload 60]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import time
from pathlib import Path

from tests.fixtures.broker import broker_test_config
from tests.uns.broker.raw_mqtt import connect_packet, mqtt_packet
from uns.broker import EmbeddedBroker
from uns.broker.packets import PacketGuard, check_body
from uns.broker.stats import Counters

__all__ = ["main"]

_TOPIC = b"acme/dallas/pack/line1/filler/data/temperature"


class _NoChecks(PacketGuard):
    """The baseline: the per-packet hook is called but checks nothing (CONNECTs are still checked)."""

    def refuses_body(self, packet_type: int, flags: int, body: bytes, client_id: str) -> bool:
        return False


def _publish_all(port: int, count: int, payload: bytes, client_id: bytes) -> None:
    one = mqtt_packet(0x30, len(_TOPIC).to_bytes(2, "big") + _TOPIC + payload)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(connect_packet(client_id.decode()))
        sock.recv(4)
        batch = one * 500
        for _ in range(count // 500):
            sock.sendall(batch)
        sock.sendall(one * (count % 500))
        sock.sendall(b"\xe0\x00")  # DISCONNECT


async def _round(broker: EmbeddedBroker, count: int, payload: bytes, checks: bool, index: int) -> float:
    core = broker._require()  # the bench switches the checks off for its baseline
    core.packets = PacketGuard(counters=core.counters) if checks else _NoChecks(counters=core.counters)
    local = broker.local_client(f"sink-{index}", queue_size=count + 10)
    await local.subscribe(["acme/#"], qos=0)
    start = time.perf_counter()
    sender = asyncio.create_task(
        asyncio.to_thread(_publish_all, broker.url.port, count, payload, f"pub-{index}".encode())
    )
    got = 0
    async for _message in local.messages():
        got += 1
        if got == count:
            break
    elapsed = time.perf_counter() - start
    await sender
    await local.close()
    return count / elapsed


def _micro(repeat: int) -> tuple[float, float]:
    guard = PacketGuard(counters=Counters())
    body = len(_TOPIC).to_bytes(2, "big") + _TOPIC + bytes(range(60))
    subscribe = b"\x00\x01" + len(_TOPIC).to_bytes(2, "big") + _TOPIC + b"\x01"

    start = time.perf_counter()
    for _ in range(repeat):
        guard.refuses_body(3, 0, body, "c")
    per_publish = (time.perf_counter() - start) / repeat * 1e6
    start = time.perf_counter()
    for _ in range(repeat):
        check_body(8, subscribe)
    per_subscribe = (time.perf_counter() - start) / repeat * 1e6
    return per_publish, per_subscribe


async def _run(count: int, rounds: int, payload: bytes) -> dict[bool, float]:
    best = {True: 0.0, False: 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedBroker(config=broker_test_config(), data_dir=Path(tmp)) as broker:
            await _round(broker, min(count, 2000), payload, True, -1)  # warm-up
            index = 0
            for _ in range(rounds):
                for checks in (False, True):
                    rate = await _round(broker, count, payload, checks, index)
                    index += 1
                    best[checks] = max(best[checks], rate)
                    print(f"  checks {'on ' if checks else 'off'}: {rate:,.0f} msg/s")
    return best


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--payload", type=int, default=60)
    args = parser.parse_args()
    payload = bytes(range(256))[: args.payload]  # binary, like a Sparkplug protobuf
    best = asyncio.run(_run(args.messages, args.rounds, payload))
    print(
        f"QoS 0 PUBLISH through the embedded broker, best of {args.rounds}: checks off {best[False]:,.0f} msg/s, "
        f"on {best[True]:,.0f} msg/s, ratio on/off {best[True] / best[False]:.3f}"
    )
    per_publish, per_subscribe = _micro(100_000)
    print(f"the checks alone: {per_publish:.2f} us per PUBLISH (its body), {per_subscribe:.2f} us per SUBSCRIBE body")


if __name__ == "__main__":
    main()
