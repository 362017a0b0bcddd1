"""Benchmark: end-to-end latency of the demo plant, from a reading to its UNS JSON topic.

Runs ``uns up`` (the whole demo hub: broker, host, simulated plant and its bridges, historian, MES,
web, rules, computed tags and the demo's systems) as users do, subscribes to ``acme/#`` and, for
every live envelope, takes arrival time minus ``timestamp_ms``.
For OPC UA that timestamp is the server's source timestamp, i.e. when the simulated value changed;
for Modbus it is when the bridge read the register (a polled value's change time is unknowable:
add up to one poll interval, 0.2 s or 1 s in the demo). Store-and-forward backfill (flagged
``historical``) is left out. Prints p50/p99 per protocol, the metric
rate, and the hub's peak RSS.

    uv run python -m bench.demo_latency [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from uns.clock import now_ns
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl

_OPCUA_AREA = "acme/dallas/packaging/"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


async def _measure(url: str, seconds: float) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {"opcua": [], "modbus": []}
    async with MqttClient(url=BrokerUrl.from_str(url), client_id="bench-latency") as client:
        await client.subscribe(["acme/+/+/+/+/data/#"], qos=0)
        warm_until = time.monotonic() + 3  # births, retained values and start-up backfill: read, not counted
        deadline = warm_until + seconds
        async for message in client.messages():
            now = time.monotonic()
            if now > deadline:
                break
            if now < warm_until or message.retain or "/data/Bridge/" in message.topic:
                continue
            envelope = orjson.loads(message.payload)
            if envelope.get("historical"):
                continue  # store-and-forward backfill (bridges start before the host is online): not live
            kind = "opcua" if message.topic.startswith(_OPCUA_AREA) else "modbus"
            latencies[kind].append(now_ns() / 1e6 - envelope["timestamp_ms"])
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="uns-bench-") as tmp:
        argv = ["up", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--data-dir", tmp]
        env = {**os.environ, "UNS_LOG_LEVEL": "ERROR"}
        proc = subprocess.Popen([sys.executable, "-m", "hub.cli", *argv], stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert proc.stdout is not None
            ready = proc.stdout.readline()
            url = next(part.split("=", 1)[1] for part in ready.split() if part.startswith("mqtt="))
            latencies = asyncio.run(_measure(url, args.seconds))
            rss = int(next(line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                           if line.startswith("VmHWM:")).split()[1]) / 1024  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"demo plant, {args.seconds:.0f} s of live data through `uns up`")
    for kind, values in latencies.items():
        print(f"{kind:>7}: {len(values) / args.seconds:7.0f} metrics/s  latency p50 {statistics.median(values):6.1f} ms"
              f"  p99 {_percentile(values, 0.99):6.1f} ms  ({len(values)} samples)")  # fmt: skip
    print(f"hub peak RSS: {rss:.0f} MiB (the whole demo hub, `uns up`, in one process)")


if __name__ == "__main__":
    main()
