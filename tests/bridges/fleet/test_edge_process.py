"""``uns edge`` agents and ``uns fleet`` as real processes on loopback: deploy, failed deploy, offline agent.

The agents' edge nodes are checked by the independent Sparkplug host of tests/bridges/edge/spb_host.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import yaml

from tests.bridges.edge.spb_host import SpbHost
from tests.bridges.fleet.rig import ENTERPRISE, FleetHub, checked_host, json_bridge, open_hub
from tests.fixtures.waiting import until
from uns.broker.embedded import EmbeddedBroker
from uns.cli import main

# three agent process starts at a few seconds each on a loaded 2-core box
pytestmark = pytest.mark.timeout(150)

GROUP = "fleetp"
AGENTS = ("a1", "a2")


def _uns(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "uns.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "UNS_LOG_LEVEL": "WARNING"},
    )


@asynccontextmanager
async def _agent(
    broker: EmbeddedBroker, data_dir: Path, agent: str, *, version: str = ""
) -> AsyncIterator[subprocess.Popen[str]]:
    # the broker runs in this event loop: every wait on the process goes to a thread
    proc = _uns(
        "edge", "--id", agent, "--broker", str(broker.url), "--enterprise", ENTERPRISE, "--data-dir", str(data_dir),
        "--status-interval", "0.3", "--birth-wait", "5",
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = await asyncio.to_thread(proc.stdout.readline)
        assert ready.startswith(f"uns-edge ready: agent={agent} "), ready or (proc.stderr and proc.stderr.read())
        assert f" version={version} " in ready if version else True, ready
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


async def _deploy(broker: EmbeddedBroker, hub_dir: Path, file: Path, agent: str) -> None:
    # `uns fleet deploy` through the CLI's own entry point (a thread: it runs its own event loop)
    argv = ["fleet", "deploy", str(file), "--agent", agent, "--broker", str(broker.url), "--enterprise", ENTERPRISE,
            "--data-dir", str(hub_dir), "--author", "test", "--note", file.stem]  # fmt: skip
    assert await asyncio.to_thread(main, argv) == 0


def _config(tmp_path: Path, name: str, source: str, agent: str, **edge: object) -> Path:
    # each agent's edge node is named after it: the same node id on two agents would be one Sparkplug node
    path = tmp_path / f"{name}-{agent}.yaml"
    path.write_text(yaml.safe_dump({"bridges": [json_bridge(f"press-{agent}", GROUP, source, **edge)]}))
    return path


def _data(host: SpbHost, node: str, value: float) -> bool:
    return any(
        r.node == node and any(n == "Temperature" and v == value for n, v, _h, _t in r.resolved)
        for r in host.of("DDATA")
    )


def _all(hub: FleetHub, version: int, status: str, agents: tuple[str, ...] = AGENTS) -> bool:
    return all(hub.reports(agent, version=version, status=status) for agent in agents)


async def test_agents_deploy_fail_roll_back_and_an_offline_agent_converges(
    broker: EmbeddedBroker, tmp_path: Path, unique_topic: str
) -> None:
    source = f"{unique_topic}/mixer"
    hub_dir = tmp_path / "hub"
    async with (
        checked_host(broker.url.port, GROUP) as host,
        open_hub(broker.url, hub_dir / "fleet") as hub,
        _agent(broker, tmp_path / "a1", "a1"),
    ):
        async with _agent(broker, tmp_path / "a2", "a2"):
            for agent in AGENTS:
                await _deploy(broker, hub_dir, _config(tmp_path, "v1", source, agent), agent)
            await until(lambda: _all(hub, 1, "running"), within_s=15, what="v1 on both agents")
            await until(lambda: host.count("NBIRTH") == 2, within_s=10, what="both births")
            await hub.client.publish(source, b'{"t": 1.5}', qos=1)
            await until(lambda: all(_data(host, f"press-{a}", 1.5) for a in AGENTS), what="v1 data")
        # a2 is away (stopped) while v2 is deployed to both: a1 takes it with a rebirth
        await until(lambda: hub.status["a2"].get("status") == "offline", what="a2 offline")
        for agent in AGENTS:
            await _deploy(broker, hub_dir, _config(tmp_path, "v2", source, agent, replay_window_s=1.0), agent)
        await until(lambda: _all(hub, 2, "running", ("a1",)), within_s=15, what="v2 on a1")
        assert host.count("NBIRTH") == 3
        async with _agent(broker, tmp_path / "a2", "a2"):
            await until(lambda: _all(hub, 2, "running"), within_s=15, what="a2 converges on v2")

            # v3 passes the hub's checks but cannot start on the agents: both roll back to v2
            blocker = tmp_path / "not-a-dir"
            blocker.write_text("x")
            for agent in AGENTS:
                path = _config(tmp_path, "v3", source, agent, buffer_dir=str(blocker))
                await _deploy(broker, hub_dir, path, agent)
            await until(lambda: _all(hub, 2, "failed"), within_s=20, what="v3 rolled back on both")
            assert all("rolled back to version 2" in str(hub.status[a]["reason"]) for a in AGENTS)
            assert all(hub.status[a]["desired"] == 3 for a in AGENTS)
            await hub.client.publish(source, b'{"t": 3.5}', qos=1)
            await until(lambda: all(_data(host, f"press-{a}", 3.5) for a in AGENTS), what="data after v3")


async def test_an_agent_killed_while_applying_comes_back_on_its_last_good_version(
    broker: EmbeddedBroker, tmp_path: Path, unique_topic: str
) -> None:
    source = f"{unique_topic}/mixer"
    hub_dir = tmp_path / "hub"
    v1 = {"bridges": [json_bridge("press-k", GROUP, source)]}
    # v2 adds a bridge that waits for a host that never comes: applying it lasts --birth-wait (5 s)
    slow = json_bridge("slow-k", GROUP, f"{source}/slow", primary_host_id="absent-host")
    v2 = {"bridges": [json_bridge("press-k", GROUP, source, unit="degF"), slow]}
    async with checked_host(broker.url.port, GROUP) as host, open_hub(broker.url, hub_dir / "fleet") as hub:
        async with _agent(broker, tmp_path / "k", "k") as proc:
            await hub.deploy("k", v1)
            await until(lambda: hub.reports("k", version=1, status="running"), within_s=15, what="v1 running")
            await hub.deploy("k", v2)
            await until(lambda: hub.status["k"].get("status") == "applying", what="v2 applying")
            proc.kill()  # kill -9 in the middle of applying v2
            await asyncio.to_thread(proc.wait, 10)
        await until(lambda: hub.status["k"].get("status") == "offline", what="the will says offline")
        async with _agent(broker, tmp_path / "k", "k", version="1"):  # its last good version, from disk
            await until(lambda: hub.reports("k", version=2, status="running"), within_s=20, what="v2 at last")
            await hub.client.publish(source, b'{"t": 7.5}', qos=1)
            await until(lambda: _data(host, "press-k", 7.5), what="data on v2")
