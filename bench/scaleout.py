"""Benchmark: the scale-out layout of compose.yaml, as processes on this machine.

Mosquitto configured from deploy/mosquitto/mosquitto.conf (on a free loopback port, anonymous),
``uns host`` republishing at QoS 1 and ``uns historian`` on its persistent QoS 1 session
acknowledging after commit, each its own process; a Sparkplug load generator (another process, N
edge nodes x M aliased Double metrics) offers stepped metrics/s for a few seconds each. Per step it
prints offered and stored metrics/s (from the historian's health), metrics sent vs stored, the
drain time once the load stops, and publish-to-UNS latency p50/p99 (the envelope's timestamp vs
arrival at a subscriber, on one node's topics), plus what the host's health said (state, broker
drops). The baseline is the same run with the code and Mosquitto config before issue 13 point 1
(``--baseline-ref``, exported with ``git archive``), one after the other in this process.

    uv run python -m bench.scaleout [--rates 1000,2000,5000] [--seconds 10] [--no-baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench.following import following
from bench.hub_process import read_ready
from bench.load import run_load
from tests.fixtures.mosquitto import free_port, mosquitto_binary
from tests.fixtures.processes import stop_process, wait_listening
from uns.clock import now_ns
from uns.mqtt.client import MqttClient

HOST_HEALTH = "acme/hub/host/health"
HISTORIAN_HEALTH = "acme/hub/historian/health"
PROBE = "acme/unbound/bench/node0/dev/data/#"
ROOT = Path(__file__).resolve().parent.parent
CONF = "deploy/mosquitto/mosquitto.conf"
_DROP = (
    "listener",
    "protocol",
    "password_file",
    "acl_file",
    "persistence_location",
    "allow_anonymous",
    "user ",
    "sys_interval",
)


@dataclass
class Monitor:
    """Follows the historian's and the host's health topics, and timestamps probe envelopes."""

    stored: int = 0
    duplicates: int = 0
    host: dict[str, object] = field(default_factory=dict)
    states: set[str] = field(default_factory=set)
    latencies_ms: list[float] = field(default_factory=list)

    async def follow(self, client: MqttClient) -> None:
        async for message in client.messages():
            if message.topic == HISTORIAN_HEALTH:
                doc = orjson.loads(message.payload)
                self.stored, self.duplicates = int(doc["stored"]), int(doc["duplicates"])
            elif message.topic == HOST_HEALTH:
                self.host = orjson.loads(message.payload)
                republish = self.host.get("republish")
                if isinstance(republish, dict):
                    self.states.add(str(republish.get("state")))
            elif not message.retain:
                envelope = orjson.loads(message.payload)
                self.latencies_ms.append(now_ns() / 1e6 - envelope["timestamp_ms"])

    async def settled(self, target: int, give_up_s: float) -> float:
        """Seconds until ``target`` rows are stored or the count stops moving for 3 s (capped)."""
        start = time.monotonic()
        last, since = self.stored, start
        while time.monotonic() - start < give_up_s:
            if self.stored >= target:
                return time.monotonic() - start
            await asyncio.sleep(0.1)
            if self.stored != last:
                last, since = self.stored, time.monotonic()
            elif time.monotonic() - since >= 3.0:
                return since - start
        return give_up_s


def _mosquitto_conf(source: str, port: int, data: Path) -> str:
    kept = [line for line in source.splitlines() if not line.strip().startswith(_DROP)]
    return "\n".join(
        [
            *kept,
            "allow_anonymous true",
            f"user {getpass.getuser()}",  # as root Mosquitto would switch to `mosquitto`, who cannot write here
            f"persistence_location {data}/",
            "log_dest stderr",
            "log_type error",
            "sys_interval 1",  # the drop count in $SYS promptly, not every 10 s
            f"listener {port} 127.0.0.1",
            "",
        ]
    )


@contextlib.contextmanager
def _process(argv: list[str], env: dict[str, str], cwd: Path, what: str) -> Iterator[subprocess.Popen[str]]:
    log = (cwd / f"{what.replace(' ', '-')}.log").open("w") if argv[0] != sys.executable else None
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=cwd)
    try:
        if argv[0] == sys.executable:  # a hub component: wait for its ready line
            read_ready(proc, what)
        yield proc
    finally:
        stop_process(proc, 10)
        if log is not None:
            log.close()


@contextlib.contextmanager
def _layout(tree: Path, conf_text: str, tmp: Path) -> Iterator[str]:
    """Mosquitto, ``uns historian`` and ``uns host`` as processes; yields the broker url."""
    port = free_port()
    (tmp / "mosquitto").mkdir()
    conf = tmp / "mosquitto.conf"
    conf.write_text(_mosquitto_conf(conf_text, port, tmp / "mosquitto"))
    url = f"mqtt://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "UNS_LOG_LEVEL": "ERROR",
        "UNS_DATA_DIR": str(tmp),
        "UNS_HOST__REPUBLISH_QOS": "1",
        "UNS_HOST__HOST_ID": "uns-hub",
        "UNS_HOST__HEALTH_INTERVAL_S": "0.5",
        "UNS_HISTORIAN__HEALTH_INTERVAL_S": "0.25",
        "UNS_HISTORIAN__CLIENT_ID": "uns-historian",
    }
    hub = [sys.executable, "-m", "hub.cli"]
    with _process([mosquitto_binary(), "-c", str(conf)], env, tmp, "mosquitto") as mosquitto:
        if not wait_listening(port, mosquitto, 5.0):
            raise RuntimeError(f"mosquitto did not listen on {port}; see {tmp / 'mosquitto.log'}")
        with (
            _process([*hub, "historian", "--broker", url, "--http-port", "0"], env, tree, "uns historian"),
            _process([*hub, "host", "--broker", url], env, tree, "uns host"),
        ):
            yield url


@contextlib.asynccontextmanager
async def _monitor(url: str) -> AsyncIterator[Monitor]:
    monitor = Monitor()
    async with following(url, [HOST_HEALTH, HISTORIAN_HEALTH, PROBE], monitor.follow):
        yield monitor


async def _step(url: str, monitor: Monitor, args: argparse.Namespace, rate: float) -> dict[str, float]:
    before = monitor.stored
    monitor.latencies_ms.clear()
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(
        target=run_load, args=(url, args.nodes, args.metrics, rate, args.seconds, child), daemon=True
    )
    proc.start()
    t0, s0 = time.monotonic(), monitor.stored
    await asyncio.to_thread(proc.join)
    t1, s1 = time.monotonic(), monitor.stored
    report = parent.recv()
    sent = report["metrics"] + args.nodes * (args.metrics + 1)  # DDATA metrics + births (bdSeq and the device's)
    drain = await monitor.settled(before + sent, args.give_up_s)
    lat = sorted(monitor.latencies_ms)
    return {
        "offered": report["metrics"] / report["seconds"],
        "stored_per_s": (s1 - s0) / max(t1 - t0, 1e-9),
        "sent": sent,
        "stored": monitor.stored - before,
        "drain": drain,
        "p50": statistics.median(lat) if lat else float("nan"),
        "p99": lat[int(len(lat) * 0.99)] if lat else float("nan"),
    }


async def _scenario(name: str, tree: Path, conf_text: str, args: argparse.Namespace) -> list[dict[str, float]]:
    print(f"\n== {name}", flush=True)
    print(
        f"{'offered/s':>10} {'stored/s':>9} {'sent':>7} {'stored':>7} {'drain s':>8} {'p50 ms':>8} {'p99 ms':>8}"
        "  host health"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="uns-scaleout-") as tmp, _layout(tree, conf_text, Path(tmp)) as url:
        async with _monitor(url) as monitor:
            await asyncio.sleep(1.0)  # subscriptions settle
            for rate in args.rates:
                monitor.states.clear()
                row = await _step(url, monitor, args, rate)
                republish = monitor.host.get("republish", "-")
                states = ",".join(sorted(monitor.states)) or "-"
                drops = monitor.host.get("broker_dropped", "-")
                host_drops = republish.get("dropped", "-") if isinstance(republish, dict) else "-"
                drain = f"{row['drain']:.1f}" if row["drain"] < args.give_up_s else f">{args.give_up_s:.0f}"
                print(
                    f"{row['offered']:>10.0f} {row['stored_per_s']:>9.0f} {row['sent']:>7.0f} {row['stored']:>7.0f}"
                    f" {drain:>8} {row['p50']:>8.1f} {row['p99']:>8.1f}  states {states}, broker_dropped {drops},"
                    f" host dropped {host_drops}, historian duplicates {monitor.duplicates}"
                    + ("" if isinstance(republish, dict) else " (no republish health)"),
                    flush=True,
                )
                rows.append(row)
    return rows


def _export(ref: str, into: Path) -> Path:
    """The tree at ``ref`` (code and deploy files), for the baseline run."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


async def _main(args: argparse.Namespace) -> None:
    after = await _scenario(
        "now: deploy/mosquitto config, windowed QoS 1 republish", ROOT, (ROOT / CONF).read_text(), args
    )
    if not args.baseline_ref:
        return
    with tempfile.TemporaryDirectory(prefix="uns-scaleout-old-") as old:
        tree = _export(args.baseline_ref, Path(old))
        if args.old_conf_too:
            await _scenario(
                f"now, with the Mosquitto config at {args.baseline_ref}", ROOT, (tree / CONF).read_text(), args
            )
        before = await _scenario(
            f"baseline: code and Mosquitto config at {args.baseline_ref}", tree, (tree / CONF).read_text(), args
        )
    print("\n== ratio (now / baseline)")
    for a, b in zip(after, before, strict=True):
        print(
            f"offered {a['offered']:>6.0f}/s: stored/s {a['stored_per_s']:.0f} / {b['stored_per_s']:.0f}"
            f" = {a['stored_per_s'] / max(b['stored_per_s'], 1e-9):.1f}x,"
            f" drain {a['drain']:.1f} s / {b['drain']:.1f} s, p99 {a['p99']:.1f} / {b['p99']:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=50, help="simulated edge nodes (one device each)")
    parser.add_argument("--metrics", type=int, default=10, help="metrics per DDATA")
    parser.add_argument(
        "--rates",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[1_000.0, 2_000.0, 5_000.0],
        help="offered metrics/s steps",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each step")
    parser.add_argument("--give-up-s", type=float, default=30.0, help="longest wait for a backlog to drain")
    parser.add_argument(
        "--baseline-ref", default="533f6bf~1", help="git ref of the baseline (before issue 13 point 1); '' skips it"
    )
    parser.add_argument("--no-baseline", dest="baseline_ref", action="store_const", const="")
    parser.add_argument(
        "--old-conf-too", action="store_true", help="also run today's code with the baseline's Mosquitto config"
    )
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
