"""Benchmark: Sparkplug DDATA in, JSON envelopes republished to the UNS, through each broker.

N simulated edge nodes (a separate process) publish DDATA with M Double metrics each at stepped
rates. The hub runs as its own process exactly as users run it: ``uns up`` (embedded amqtt, host
in-process) and ``uns host`` against Mosquitto. For each step it prints offered and republished
metrics/s, messages lost, the backlog left when the load stops (drain time), then p50/p99
publish-to-UNS latency at a fixed 10k metrics/s, peak RSS, and the ratio between the brokers.
Each step also prints the hub's CPU per republished metric (from /proc, load start to drained): on a
shared, loaded box that is the figure to compare, as throughput then depends on the neighbours.
``--baseline REV`` first runs the ``uns up`` scenario on the hub of commit REV (``git archive``),
for the ratio in the same run; ``--current REV`` runs that commit instead of the working tree.

    uv run python -m bench.host_throughput [--rates 20000,40000,80000] [--seconds 6] [--baseline REV]
        [--current REV] [--no-mosquitto]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench.following import following
from bench.hub_idle import cpu_seconds
from bench.hub_process import hub_command, hub_source, read_ready, rss_mib
from bench.load import run_load
from tests.fixtures.mosquitto import run_mosquitto
from tests.fixtures.processes import stop_process
from uns.mqtt.client import MqttClient

HEALTH = "acme/hub/host/health"
PROBE = "acme/unbound/bench/node0/dev/data/#"


@dataclass
class Step:
    offered: float
    republished_per_s: float
    sent_metrics: int
    republished: int
    drain_s: float
    cpu_s: float

    @property
    def cpu_us(self) -> float:
        """The hub's CPU microseconds per republished metric."""
        return self.cpu_s * 1e6 / self.republished if self.republished else float("nan")

    @property
    def lost(self) -> int:
        return max(0, self.sent_metrics - self.republished)


@dataclass
class Monitor:
    """Reads the host's health topic and timestamps probe envelopes."""

    republished: int = 0
    messages: int = 0
    updated: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    recording: bool = False

    async def follow(self, client: MqttClient) -> None:
        async for message in client.messages():
            if message.topic == HEALTH:
                doc = orjson.loads(message.payload)
                self.republished = int(doc["metrics_republished"])
                self.messages = int(doc["messages"])
                self.updated = time.monotonic()
            elif self.recording and not message.retain:
                envelope = orjson.loads(message.payload)
                self.latencies_ms.append(time.time_ns() / 1e6 - envelope["timestamp_ms"])

    async def settled(self, give_up_s: float = 60.0) -> float:
        """Seconds until the republished count stops moving (the backlog is drained)."""
        start = time.monotonic()
        last, stable_since = self.republished, time.monotonic()
        while time.monotonic() - start < give_up_s:
            await asyncio.sleep(0.25)
            if self.republished != last:
                last, stable_since = self.republished, time.monotonic()
            elif time.monotonic() - stable_since >= 1.5:
                return max(0.0, stable_since - start)
        return give_up_s


@contextlib.contextmanager
def _hub_process(
    argv: list[str], data_dir: Path, source: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {
        **os.environ,
        "UNS_HOST__HEALTH_INTERVAL_S": "0.25",
        "UNS_LOG_LEVEL": "ERROR",
        "UNS_DATA_DIR": str(data_dir),
    }
    command, cwd = hub_command(argv, source, env)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        yield proc, read_ready(proc)["mqtt"]
    finally:
        stop_process(proc, 10)


@contextlib.asynccontextmanager
async def _monitor(url: str) -> AsyncIterator[Monitor]:
    monitor = Monitor()
    async with following(url, [HEALTH, PROBE], monitor.follow):
        yield monitor


def _load(url: str, nodes: int, metrics: int, rate: float, seconds: float) -> multiprocessing.Process:
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=run_load, args=(url, nodes, metrics, rate, seconds, child), daemon=True)
    proc.start()
    proc.result_pipe = parent  # type: ignore[attr-defined]
    return proc


async def _step(
    url: str, monitor: Monitor, nodes: int, metrics: int, rate: float, seconds: float, pids: list[int]
) -> Step:
    await monitor.settled()
    before = monitor.republished
    cpu0 = sum(cpu_seconds(pid) for pid in pids)
    proc = _load(url, nodes, metrics, rate, seconds)
    await asyncio.sleep(1.0)  # births and ramp-up
    t0, r0 = time.monotonic(), monitor.republished
    await asyncio.to_thread(proc.join)
    t1, r1 = time.monotonic(), monitor.republished
    report = proc.result_pipe.recv()  # type: ignore[attr-defined]
    drain = await monitor.settled()
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu0  # includes settled()'s idle 1.5 s, small
    births = nodes * (metrics + 1)
    return Step(
        offered=report["metrics"] / report["seconds"],
        republished_per_s=(r1 - r0) / max(t1 - t0, 1e-9),
        sent_metrics=report["metrics"] + births,
        republished=monitor.republished - before,
        drain_s=drain,
        cpu_s=cpu,
    )


async def _scenario(name: str, url: str, pids: list[int], args: argparse.Namespace) -> dict[str, float]:
    print(f"\n== {name}: {url}", flush=True)
    print(f"{'offered/s':>10} {'republished/s':>14} {'sent':>9} {'republished':>11} {'lost':>6} {'drain s':>8}"
          f" {'cpu us/metric':>13}")  # fmt: skip
    best = 0.0
    cpus: list[float] = []
    async with _monitor(url) as monitor:
        for rate in args.rates:
            step = await _step(url, monitor, args.nodes, args.metrics, rate, args.seconds, pids)
            ok = step.lost == 0 and step.drain_s < 1.0
            cpus.append(step.cpu_us)
            print(
                f"{step.offered:>10.0f} {step.republished_per_s:>14.0f} {step.sent_metrics:>9} {step.republished:>11}"
                f" {step.lost:>6} {step.drain_s:>8.2f} {step.cpu_us:>13.1f} {'sustained' if ok else 'BACKLOG/LOSS'}",
                flush=True,
            )
            if ok:
                best = max(best, step.republished_per_s)
        monitor.latencies_ms.clear()
        monitor.recording = True
        await _step(url, monitor, args.nodes, args.metrics, args.latency_rate, args.seconds, pids)
        monitor.recording = False
        lat = sorted(monitor.latencies_ms)
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99)] if lat else float("nan")
    rss = sum(rss_mib(pid, "VmHWM") for pid in pids)
    cpu = statistics.median(cpus)
    print(
        f"sustained: {best:.0f} metrics/s   latency at {args.latency_rate:.0f}/s: p50 {p50:.1f} ms  p99 {p99:.1f} ms"
        f" ({len(lat)} samples)   peak RSS {rss:.0f} MiB   CPU {cpu:.1f} us/metric"
        f" ({cpu / 100:.2f} of a core per 10k metrics/s)"
    )
    return {"sustained": best, "p50": p50, "p99": p99, "rss": rss, "cpu_us": cpu}


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="uns-bench-") as tmp:
        argv = ["up", "--no-demo", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--host-id", "bench"]
        if args.baseline is not None:
            with hub_source(args.baseline) as source, _hub_process(argv, Path(tmp) / "old", source) as (proc, url):
                old = await _scenario(f"baseline {args.baseline}: uns up", url, [proc.pid], args)
        with hub_source(args.current) as source, _hub_process(argv, Path(tmp) / "new", source) as (proc, url):
            embedded = await _scenario("embedded amqtt broker, host in-process (uns up)", url, [proc.pid], args)
        if args.baseline is not None:
            print(f"\n== uns up, this tree / baseline {args.baseline}")
            for key in ("sustained", "p50", "p99", "rss", "cpu_us"):
                ratio = embedded[key] / old[key] if old[key] else float("nan")
                print(f"{key:>10}: {embedded[key]:10.1f} / {old[key]:10.1f} = {ratio:.2f}x")
        if args.no_mosquitto:
            return
        with (
            run_mosquitto() as mosquitto,
            _hub_process(["host", "--broker", mosquitto.url, "--host-id", "bench"], Path(tmp)) as (proc, url),
        ):
            external = await _scenario("Mosquitto, host over TCP (uns host)", url, [proc.pid, mosquitto.pid], args)
    print("\n== ratio (Mosquitto / embedded)")
    for key in ("sustained", "p50", "p99", "rss"):
        ratio = external[key] / embedded[key] if embedded[key] else float("nan")
        print(f"{key:>10}: {external[key]:10.1f} / {embedded[key]:10.1f} = {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=50, help="simulated edge nodes (one device each)")
    parser.add_argument("--metrics", type=int, default=10, help="metrics per DDATA")
    parser.add_argument(
        "--rates",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[20_000.0, 40_000.0, 80_000.0, 120_000.0, 160_000.0],
        help="offered metrics/s steps",
    )
    parser.add_argument("--latency-rate", type=float, default=10_000.0, help="metrics/s for the latency run")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each step")
    parser.add_argument("--baseline", help="first run the uns up scenario on the hub of this commit (ratio printed)")
    parser.add_argument("--current", help="run this commit (e.g. HEAD) instead of the working tree")
    parser.add_argument("--no-mosquitto", action="store_true", help="skip the Mosquitto layout")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
