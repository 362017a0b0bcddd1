"""Benchmark: how long ``--agents`` edge agents take to converge on a new version, and what they cost the hub.

The hub is ``uns broker`` as its own process (the shipped broker.yaml, port 0, a temporary data dir): the
fleet's whole hub side is its broker, as ``uns fleet`` only writes files and publishes retained configs.
The agents are lightweight: ``EdgeAgent`` objects, ``--workers`` processes each running its share in one
event loop, every agent with one MQTT-JSON bridge (three connections: the agent, the edge node, the
bridge's source subscription), anonymous (the shipped broker.yaml's loopback admin). This process is the
fleet's hub side: it stores v1 and v2 of every agent with ``FleetStore`` and publishes them retained.

Measured per run, for the baseline count (``--baseline``, 10) and then ``--agents`` (100) in the same run:
- converge: seconds from the first v2 publish until every agent reports ``running`` v2 (each bridge restarted,
  births out);
- hub RSS per agent: (broker RSS with the agents on v1 - broker RSS before any agent) / agents;
- hub CPU per agent for the deploy: broker CPU seconds from the first v2 publish until converged / agents;
- hub CPU per agent idle: broker CPU seconds over ``--idle-s`` with the agents running (status every 10 s).

    uv run python -m bench.fleet [--agents 100] [--baseline 10] [--workers 4] [--idle-s 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.hub_idle import cpu_seconds
from bench.hub_process import read_ready, rss_mib
from bridges.fleet import EdgeAgent
from tests.fixtures.processes import stop_process
from uns.connect import network_clients
from uns.fleet import FleetStore, config_topic, status_topic
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl

__all__ = ["main"]

_ENTERPRISE = "acme"
_ROOT = Path(__file__).resolve().parent.parent


def _config(agent: str, unit: str) -> dict[str, object]:
    mapping = {"topic": f"bench/{agent}/mixer", "path": "$.t", "name": "Temperature", "unit": unit}
    bridge = {
        "kind": "mqtt_json",
        "name": f"node-{agent}",
        # no primary host: births go out at once (with one, they wait for its STATE, up to --birth-wait)
        "edge": {"group": "bench", "first_reading_wait_s": 0.1, "primary_host_id": None},
        "devices": [{"id": "mixer", "mappings": [mapping]}],
    }
    return {"bridges": [bridge]}


@contextlib.contextmanager
def _broker(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], BrokerUrl]]:
    command = [sys.executable, "-m", "hub.cli", "broker", "--broker-config", str(_ROOT / "broker.yaml")]
    command += ["--mqtt-port", "0", "--data-dir", str(data_dir)]
    env = {**os.environ, "UNS_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        ready = read_ready(proc, "uns broker")
        yield proc, BrokerUrl.from_str(ready["mqtt"])
    finally:
        stop_process(proc, 10)


@contextlib.contextmanager
def _workers(url: BrokerUrl, agents: list[str], workers: int, data_dir: Path) -> Iterator[None]:
    procs = []
    for index in range(workers):
        share = agents[index::workers]
        if share:
            command = [sys.executable, "-m", "bench.fleet", "--worker", str(url), str(data_dir), *share]
            procs.append(subprocess.Popen(command, env={**os.environ, "UNS_LOG_LEVEL": "ERROR"}))
    try:
        yield
    finally:
        for proc in procs:
            stop_process(proc, 15)


async def _worker(url: BrokerUrl, data_dir: Path, agents: list[str]) -> None:
    """Run ``agents`` in this process until killed."""
    async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tasks:
        for agent in agents:
            edge = EdgeAgent(
                agent_id=agent, enterprise=_ENTERPRISE, clients=network_clients(url), data_dir=data_dir / agent
            )
            await stack.enter_async_context(edge)
            tasks.create_task(edge.run(), name=f"bench.{agent}")


async def _deploy_and_wait(
    client: MqttClient, store: FleetStore, agents: list[str], unit: str, statuses: dict[str, dict[str, object]]
) -> int:
    versions = [store.deploy(agent, _config(agent, unit), author="bench") for agent in agents]
    for version in versions:
        await client.publish(
            config_topic(_ENTERPRISE, version.agent), version.model_dump_json().encode(), qos=1, retain=True
        )
    number = versions[0].version
    deadline = time.monotonic() + 300
    while not all(
        statuses.get(a, {}).get("version") == number and statuses[a].get("status") == "running" for a in agents
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"not converged on v{number} in 300 s")
        await asyncio.sleep(0.01)
    return number


async def _run(count: int, workers: int, idle_s: float) -> dict[str, float]:
    agents = [f"b{n:03d}" for n in range(count)]
    with tempfile.TemporaryDirectory(prefix="uns-bench-fleet-") as name, _broker(Path(name) / "hub") as (proc, url):
        store = FleetStore(directory=Path(name) / "hub" / "fleet")
        statuses: dict[str, dict[str, object]] = {}
        async with MqttClient(url=url, client_id="bench-fleet-hub", max_inflight=1000) as client:
            await client.subscribe([status_topic(_ENTERPRISE, "+")], qos=1)

            async def watch() -> None:
                async for message in client.messages():
                    with contextlib.suppress(ValueError):
                        statuses[message.topic.split("/")[-2]] = json.loads(message.payload)

            watcher = asyncio.create_task(watch(), name="bench.watch")
            await asyncio.sleep(1.0)
            rss_idle = rss_mib(proc.pid)
            with _workers(url, agents, workers, Path(name) / "agents"):
                await _deploy_and_wait(client, store, agents, "degC", statuses)
                await asyncio.sleep(2.0)  # let the first wave's connections settle
                rss_v1 = rss_mib(proc.pid)
                cpu_before, started = cpu_seconds(proc.pid), time.perf_counter()
                await _deploy_and_wait(client, store, agents, "degF", statuses)
                converge_s = time.perf_counter() - started
                deploy_cpu = cpu_seconds(proc.pid) - cpu_before
                idle_before = cpu_seconds(proc.pid)
                await asyncio.sleep(idle_s)
                idle_cpu = cpu_seconds(proc.pid) - idle_before
            watcher.cancel()
    return {
        "converge_s": converge_s,
        "rss_per_agent_kib": (rss_v1 - rss_idle) * 1024 / count,
        "deploy_cpu_per_agent_ms": deploy_cpu * 1000 / count,
        "idle_cpu_per_agent_pct": idle_cpu / idle_s * 100 / count,
        "rss_idle_mib": rss_idle,
        "rss_mib": rss_v1,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the bench (or, with ``--worker``, one worker process's agents)."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--worker":
        asyncio.run(_worker(BrokerUrl.from_str(args[1]), Path(args[2]), args[3:]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--baseline", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--idle-s", type=float, default=20.0)
    options = parser.parse_args(args)
    results = {n: asyncio.run(_run(n, options.workers, options.idle_s)) for n in (options.baseline, options.agents)}
    base, big = results[options.baseline], results[options.agents]
    print(f"agents in {options.workers} worker processes, one MQTT-JSON bridge each; load {os.getloadavg()[0]:.1f}")
    for n, r in results.items():
        print(
            f"{n:4d} agents: converge {r['converge_s']:.2f} s;"
            f" hub RSS {r['rss_idle_mib']:.1f} -> {r['rss_mib']:.1f} MiB"
            f" ({r['rss_per_agent_kib']:.0f} KiB/agent); deploy CPU {r['deploy_cpu_per_agent_ms']:.1f} ms/agent;"
            f" idle CPU {r['idle_cpu_per_agent_pct']:.3f} %/agent"
        )
    ratio = big["converge_s"] / base["converge_s"]
    print(
        f"ratio {options.agents}/{options.baseline}: converge x{ratio:.2f}"
        f" for x{options.agents / options.baseline:g} agents"
    )


if __name__ == "__main__":
    main()
