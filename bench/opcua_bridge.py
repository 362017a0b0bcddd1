"""Benchmark: one OpcUaSource with N monitored items at 100 ms against an asyncua server in another process.

The server process owns N Double variables and changes every one of them each 100 ms (source
timestamp = the change). The bridge side (this process) subscribes to all of them with a 100 ms
sampling and publishing interval and counts the samples its ``events()`` yields. It prints tags/s,
the bridge process's CPU per 1k tags/s, and change-to-sample latency (the sample's server source
timestamp to the moment the bridge yields it; both processes share the clock).

    uv run python -m bench.opcua_bridge [--tags 1000] [--seconds 10] [--interval-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import socket
import statistics
import time
from multiprocessing.synchronize import Event as EventType

from asyncua import ua
from asyncua.server.server import Server

from bridges.opcua import OpcUaSource
from bridges.source import Samples
from model.bridges import OpcUaBridgeConfig
from uns.clock import now_ns, utc_now

NS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _serve(port: int, tags: int, interval_s: float, ready: EventType, stop: EventType) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    await server.register_namespace("urn:uns-hub:bench")
    folder = await server.nodes.objects.add_object(ua.NodeId.from_string(f"ns={NS};s=Bench"), "Bench")
    ids = [ua.NodeId.from_string(f"ns={NS};s=Bench.T{i}") for i in range(tags)]
    for i, node_id in enumerate(ids):
        await folder.add_variable(node_id, f"T{i}", 0.0)
    await server.start()
    ready.set()
    step = 0
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            step += 1
            now = utc_now()
            for i, node_id in enumerate(ids):
                value = ua.DataValue(Value=ua.Variant(step + i / tags, ua.VariantType.Double),
                                     SourceTimestamp=now, ServerTimestamp=now)  # type: ignore[arg-type]  # fmt: skip
                await server.write_attribute_value(node_id, value)
            next_at += interval_s
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        await server.stop()


def _server_process(port: int, tags: int, interval_s: float, ready: EventType, stop: EventType) -> None:
    asyncio.run(_serve(port, tags, interval_s, ready, stop))


async def _measure(endpoint: str, tags: int, interval_ms: float, seconds: float) -> None:
    config = OpcUaBridgeConfig.model_validate(
        {
            "name": "bench",
            "edge": {"group": "bench"},
            "endpoint": endpoint,
            "publishing_interval_ms": interval_ms,
            "timeout_s": 4.0,
            "devices": [
                {
                    "id": "bench",
                    "nodes": [
                        {"name": f"T{i}", "node_id": f"ns={NS};s=Bench.T{i}", "sampling_interval_ms": interval_ms}
                        for i in range(tags)
                    ],
                }
            ],
        }
    )
    source = OpcUaSource(config=config)
    counted = 0
    latencies: list[float] = []
    measuring = False

    async def consume() -> None:
        nonlocal counted
        async for event in source.events():
            if measuring and isinstance(event, Samples):
                counted += len(event.samples)
                now_ms = now_ns() / 1e6
                latencies.extend(now_ms - sample.timestamp_ms for sample in event.samples[:: max(1, tags // 50)])

    async with source:
        task = asyncio.create_task(consume(), name="bench.opcua.consume")
        await asyncio.sleep(3.0)  # warm-up: initial values of every item, then a few cycles
        notifications0 = source.stats.notifications
        measuring = True
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        measuring = False
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        stats = source.stats
    rate = counted / wall
    offered = tags * 1000 / interval_ms
    latencies.sort()
    print(f"tags: {tags} at {interval_ms:g} ms (offered {offered:,.0f} changes/s) for {wall:.1f} s")
    print(f"bridge received: {rate:,.0f} tags/s ({rate / offered:.0%} of offered)")
    print(f"bridge CPU: {cpu / wall:.0%} of one core; {cpu / wall / (rate / 1000):.1%} of a core per 1k tags/s")
    if latencies:
        p50 = statistics.median(latencies)
        p95 = latencies[int(len(latencies) * 0.95)]
        print(f"change -> sample latency: p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {latencies[-1]:.0f} ms")
    print(f"connects {stats.connects}, losses {stats.losses}, notifications {stats.notifications - notifications0}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval-ms", type=float, default=100.0)
    args = parser.parse_args()
    port = _free_port()
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    server = ctx.Process(target=_server_process, args=(port, args.tags, args.interval_ms / 1000, ready, stop))
    server.start()
    try:
        if not ready.wait(60):
            raise SystemExit("the OPC UA server did not start within 60 s")
        print(f"server pid {server.pid}, bridge pid {os.getpid()}, {os.cpu_count()} cores")
        asyncio.run(_measure(f"opc.tcp://127.0.0.1:{port}/bench", args.tags, args.interval_ms, args.seconds))
    finally:
        stop.set()
        server.join(10)
        if server.is_alive():
            server.terminate()


if __name__ == "__main__":
    main()
