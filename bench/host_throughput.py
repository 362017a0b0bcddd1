"""Benchmark: Sparkplug DDATA in, JSON envelopes republished to the UNS, through each broker.

N simulated edge nodes (a separate process) publish DDATA with M Double metrics each at stepped
rates. The hub runs as its own process exactly as users run it: ``uns up`` (the embedded broker, host,
historian, MES adapter, web and the rest in one process) and ``uns host`` against
Mosquitto. For each step it prints offered and republished metrics/s, messages lost, the backlog
left when the load stops (drain time), then p50/p99 publish-to-UNS latency at a fixed 10k
metrics/s, peak RSS, and the ratio between the brokers.
Each step also prints the hub's CPU per republished metric (from /proc, load start to drained): on a
shared, loaded box that is the figure to compare, as throughput then depends on the neighbours.
``--baseline REV`` first runs the ``uns up`` scenario on the hub of commit REV (``git archive``),
for the ratio in the same run; ``--current REV`` runs that commit instead of the working tree.
``--host-worker on`` runs ``uns up`` with ``host.worker: true`` (the host's core in a child process);
``--host-worker both`` runs this tree inline, then with the worker, and prints the ratio. CPU and peak RSS
then count the hub's process and its children (the host worker); the loop thread's CPU per metric and
the worker's are printed beside the total.

    uv run python -m bench.host_throughput [--rates 20000,40000,80000] [--seconds 6] [--baseline REV]
        [--current REV] [--no-mosquitto] [--host-worker off|on|both]
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
from bench.hub_idle import cpu_seconds, main_thread_seconds
from bench.hub_process import hub_command, hub_source, read_ready, rss_mib
from bench.load import run_load
from tests.fixtures.mosquitto import run_mosquitto
from tests.fixtures.processes import stop_process
from uns.clock import now_ns
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
    loop_s: float = 0.0
    """The hub's main (event loop) thread's CPU seconds."""
    children_s: float = 0.0
    """The CPU seconds of the hub's live children (the host worker, started as `python -m uns.host.worker`)."""

    @property
    def cpu_us(self) -> float:
        """The hub's CPU microseconds per republished metric."""
        return self.per_metric_us(self.cpu_s)

    def per_metric_us(self, seconds: float) -> float:
        """``seconds`` of CPU in microseconds per republished metric."""
        return seconds * 1e6 / self.republished if self.republished else float("nan")

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
                self.latencies_ms.append(now_ns() / 1e6 - envelope["timestamp_ms"])

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


def _descendants(pid: int) -> list[int]:
    """The live processes below ``pid`` (the host worker is a child of the hub)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        below = parents.get(todo.pop(), [])
        found += below
        todo += below
    return found


@dataclass(frozen=True)
class _Cpu:
    total: float
    loop: float
    children: float


def _cpu(pids: list[int]) -> _Cpu:
    """CPU seconds of ``pids`` and their live descendants, of the first pid's main thread, and of the descendants."""
    below = [child for pid in pids for child in _descendants(pid)]
    children = 0.0
    for child in below:
        with contextlib.suppress(OSError):
            children += cpu_seconds(child, children=False)
    loop = main_thread_seconds(pids[0])
    return _Cpu(sum(cpu_seconds(pid) for pid in pids) + children, loop, children)


@contextlib.contextmanager
def _hub_process(
    argv: list[str], data_dir: Path, source: Path | None = None, *, worker: bool = False
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {
        **os.environ,
        "UNS_HOST__HEALTH_INTERVAL_S": "0.25",
        "UNS_LOG_LEVEL": "ERROR",
        "UNS_DATA_DIR": str(data_dir),
    }
    if worker:
        env["UNS_HOST__WORKER"] = "true"  # only then: a tree older than the setting refuses the key
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
    child.close()  # only the load holds its end: if it dies, recv raises EOFError instead of waiting forever
    proc.result_pipe = parent  # type: ignore[attr-defined]
    return proc


async def _step(
    url: str, monitor: Monitor, nodes: int, metrics: int, rate: float, seconds: float, pids: list[int]
) -> Step:
    await monitor.settled()
    before = monitor.republished
    cpu0 = _cpu(pids)
    proc = _load(url, nodes, metrics, rate, seconds)
    await asyncio.sleep(1.0)  # births and ramp-up
    t0, r0 = time.monotonic(), monitor.republished
    await asyncio.to_thread(proc.join)
    t1, r1 = time.monotonic(), monitor.republished
    report = proc.result_pipe.recv()  # type: ignore[attr-defined]
    drain = await monitor.settled()
    cpu1 = _cpu(pids)  # includes settled()'s idle 1.5 s, small
    births = nodes * (metrics + 1)
    return Step(
        offered=report["metrics"] / report["seconds"],
        republished_per_s=(r1 - r0) / max(t1 - t0, 1e-9),
        sent_metrics=report["metrics"] + births,
        republished=monitor.republished - before,
        drain_s=drain,
        cpu_s=cpu1.total - cpu0.total,
        loop_s=cpu1.loop - cpu0.loop,
        children_s=cpu1.children - cpu0.children,
    )


async def _scenario(name: str, url: str, pids: list[int], args: argparse.Namespace) -> dict[str, float]:
    print(f"\n== {name}: {url}", flush=True)
    print(f"{'offered/s':>10} {'republished/s':>14} {'sent':>9} {'republished':>11} {'lost':>6} {'drain s':>8}"
          f" {'cpu us/metric':>13} {'loop':>6} {'worker':>6}  load")  # fmt: skip
    best = 0.0
    cpus: list[float] = []
    loops: list[float] = []
    async with _monitor(url) as monitor:
        for rate in args.rates:
            step = await _step(url, monitor, args.nodes, args.metrics, rate, args.seconds, pids)
            ok = step.lost == 0 and step.drain_s < 1.0
            cpus.append(step.cpu_us)
            loops.append(step.per_metric_us(step.loop_s))
            print(
                f"{step.offered:>10.0f} {step.republished_per_s:>14.0f} {step.sent_metrics:>9} {step.republished:>11}"
                f" {step.lost:>6} {step.drain_s:>8.2f} {step.cpu_us:>13.1f} {loops[-1]:>6.1f}"
                f" {step.per_metric_us(step.children_s):>6.1f}  {_load_avg()} {'sustained' if ok else 'BACKLOG/LOSS'}",
                flush=True,
            )
            if ok:
                best = max(best, step.republished_per_s)
        monitor.latencies_ms.clear()
        monitor.recording = True
        at10k = await _step(url, monitor, args.nodes, args.metrics, args.latency_rate, args.seconds, pids)
        monitor.recording = False
        lat = sorted(monitor.latencies_ms)
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99)] if lat else float("nan")
    tree = [*pids, *(child for pid in pids for child in _descendants(pid))]
    rss = sum(rss_mib(pid, "VmHWM") for pid in tree)  # a forked child's counts the pages it shares too
    pss = sum(_pss_mib(pid) for pid in tree)
    cpu = statistics.median(cpus)
    loop = statistics.median(loops)
    print(
        f"sustained: {best:.0f} metrics/s   latency at {args.latency_rate:.0f}/s: p50 {p50:.1f} ms  p99 {p99:.1f} ms"
        f" ({len(lat)} samples)   peak RSS {rss:.0f} MiB (PSS now {pss:.0f})"
        f"   CPU {cpu:.1f} us/metric (loop thread {loop:.1f})"
        f" ({cpu / 100:.2f} of a core per 10k metrics/s); at {args.latency_rate:.0f}/s {at10k.cpu_us:.1f} us/metric"
        f" (loop {at10k.per_metric_us(at10k.loop_s):.1f})   load {_load_avg()}"
    )
    return {
        "sustained": best,
        "p50": p50,
        "p99": p99,
        "rss": rss,
        "pss": pss,
        "cpu_us": cpu,
        "loop_us": loop,
        "cpu_10k_us": at10k.cpu_us,
    }


def _pss_mib(pid: int) -> float:
    """Proportional resident memory of ``pid`` now (shared pages split between their processes), MiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _load_avg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _ratios(title: str, new: dict[str, float], old: dict[str, float]) -> None:
    print(f"\n== {title}")
    for key in new:
        ratio = new[key] / old[key] if old[key] else float("nan")
        print(f"{key:>10}: {new[key]:10.1f} / {old[key]:10.1f} = {ratio:.2f}x")


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="uns-bench-") as tmp:
        argv = ["up", "--no-demo", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--host-id", "bench"]
        if args.baseline is not None:
            with hub_source(args.baseline) as source, _hub_process(argv, Path(tmp) / "old", source) as (proc, url):
                old = await _scenario(f"baseline {args.baseline}: uns up", url, [proc.pid], args)
        inline = worker = None
        with hub_source(args.current) as source:
            if args.host_worker in ("off", "both"):
                with _hub_process(argv, Path(tmp) / "new", source) as (proc, url):
                    inline = await _scenario("uns up: broker, host and the rest in-process", url, [proc.pid], args)
            if args.host_worker in ("on", "both"):
                with _hub_process(argv, Path(tmp) / "worker", source, worker=True) as (proc, url):
                    worker = await _scenario("uns up with host.worker: true", url, [proc.pid], args)
        embedded = inline or worker
        assert embedded is not None
        if args.baseline is not None:
            _ratios(f"uns up, this tree / baseline {args.baseline}", embedded, old)
        if inline is not None and worker is not None:
            _ratios("uns up, host.worker / inline (this tree)", worker, inline)
            if args.baseline is not None:
                _ratios(f"uns up, host.worker / baseline {args.baseline}", worker, old)
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
    parser.add_argument(
        "--host-worker",
        choices=["off", "on", "both"],
        default="off",
        help="uns up with host.worker: off (inline host), on, or both (inline then worker, ratio printed)",
    )
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
