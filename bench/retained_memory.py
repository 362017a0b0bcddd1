"""Benchmark: Python heap per retained topic in the embedded broker, this tree against a baseline commit.

An in-process broker (persistence off) receives ``--topics`` retained value envelopes from an
in-process publisher that encodes them with ``orjson.dumps`` (as the MES adapter, rules and
computed tags do), then as many from a network client (raw MQTT from a thread). tracemalloc's
traced heap before and after each fill, divided by the topics, is the cost of one retained topic
(the store's entry and its payload). Each tree runs in its own process (``git archive`` of the
baseline), so both figures come from the same run.

    uv run python -m bench.retained_memory [--baseline 0477d87] [--topics 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import orjson

__all__ = ["main"]


def _topics(count: int, kind: str) -> list[str]:
    return [f"acme/s/{kind}/l{n // 1000}/c{n // 10 % 100}/data/m{n % 10}" for n in range(count)]


def _envelope(n: int) -> bytes:
    doc = {"value": 20.0 + n % 1000 / 100, "timestamp_ms": 1_764_000_000_000 + n, "quality": "good"}
    return orjson.dumps({**doc, "datatype": "Double", "unit": "degC"})


def _publish_raw(port: int, names: list[str]) -> None:
    from tests.uns.broker.raw_mqtt import connect_packet, mqtt_packet

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(connect_packet("bench-net"))
        sock.recv(4)
        for start in range(0, len(names), 1000):
            packets = []
            for i, name in enumerate(names[start : start + 1000]):
                topic = name.encode()
                packets.append(mqtt_packet(0x31, len(topic).to_bytes(2, "big") + topic + _envelope(start + i)))
            sock.sendall(b"".join(packets))
        sock.sendall(b"\xe0\x00")  # DISCONNECT


async def _measure(count: int) -> dict[str, float]:
    from tests.fixtures.broker import broker_test_config
    from tests.fixtures.waiting import until
    from uns.broker import EmbeddedBroker
    from uns.mqtt.types import Message

    config = broker_test_config(persistence={"enabled": False})
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="uns-bench-retained-") as tmp:
        async with EmbeddedBroker(config=config, data_dir=Path(tmp)) as broker:
            core = broker._require()  # the bench reads the store's size
            local = broker.local_client("bench-local")
            tracemalloc.start()
            for kind in ("local", "network"):
                names = _topics(count, kind)
                gc.collect()
                before = tracemalloc.get_traced_memory()[0]
                if kind == "local":
                    for start in range(0, count, 1000):
                        await local.publish_many(
                            [Message(t, _envelope(start + i), 0, True) for i, t in enumerate(names[start:][:1000])]
                        )
                else:  # a raw socket from a thread: the publisher's own allocations are gone when it ends
                    await asyncio.to_thread(_publish_raw, broker.url.port, names)
                    await until(
                        lambda: sum(1 for t in core._retained_messages if "/network/" in t) >= count, within_s=300
                    )
                del names
                gc.collect()
                figures[kind] = (tracemalloc.get_traced_memory()[0] - before) / count
            tracemalloc.stop()
            await local.close()
    return figures


def main() -> None:
    """Run both trees (``--child`` measures the tree it runs from) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="0477d87", help="the commit to compare with")
    parser.add_argument("--topics", type=int, default=100_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.topics))))
        return
    from bench.hub_process import hub_source

    argv = [sys.executable, __file__, "--child", "--topics", str(args.topics)]  # this file, whichever tree
    results: dict[str, dict[str, float]] = {}
    with hub_source(args.baseline) as tree:
        for name, source in (("baseline", tree), ("this tree", Path.cwd())):
            env = {**os.environ, "PYTHONPATH": str(source)}  # that tree's modules
            done = subprocess.run(argv, capture_output=True, text=True, check=True, env=env, cwd=source)
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    for kind in ("local", "network"):
        old, new = results["baseline"][kind], results["this tree"][kind]
        print(f"retained topic published {kind:<8}: baseline {args.baseline} {old:,.0f} B/topic,"
              f" this tree {new:,.0f} B/topic ({old / new:.2f}x less)")  # fmt: skip


if __name__ == "__main__":
    main()
