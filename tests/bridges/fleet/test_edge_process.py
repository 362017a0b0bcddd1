"""Five ``uns edge`` agents as processes on loopback, enrolled and managed with ``uns fleet`` (issue 20 point 5).

One test shares the five agents across its steps (each step's asserts are on its own versions): enrolment
by one-time token, a deploy with rebirths, a broken version rolled back while data flows, an agent away
during a deploy, kill -9 in the middle of applying with no sample lost, and a revoked agent refused. The
agents' edge nodes are checked by the independent Sparkplug host of tests/bridges/edge/spb_host.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from hub.cli import main
from tests.bridges.edge.spb_host import SpbHost
from tests.bridges.fleet.rig import ENTERPRISE, FleetHub, checked_host, edge_process, json_bridge, open_hub
from tests.fixtures.waiting import until
from uns.broker.embedded import EmbeddedBroker
from uns.errors import BrokerError
from uns.mqtt.client import MqttClient

# 47 CPU-s in all, half of it seven agent process starts (~3 CPU-s each: the uns CLI's imports);
# 164-197 s on the shared 2-core box at load 11-15
pytestmark = pytest.mark.timeout(300)

GROUP = "fleet5"
AGENTS = ("a1", "a2", "a3", "a4", "a5")


def _file(tmp_path: Path, name: str, bridges: list[dict[str, object]]) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"bridges": bridges}))
    return str(path)


def _press(root: str, source_broker: str, **edge: object) -> dict[str, object]:
    # one file for every agent: ${agent} gives each its own edge node and source topic
    bridge = json_bridge("press-${agent}", GROUP, f"{root}/${{agent}}", **edge)
    bridge["source_broker"] = source_broker  # the agent's own account reads no plant topic
    return bridge


def _values(host: SpbHost, node: str) -> set[object]:
    return {
        value
        for r in host.received
        if r.node == node and r.kind in ("DBIRTH", "DDATA")
        for name, value, _historical, _t in r.resolved
        if name == "Temperature"
    }


def _births(host: SpbHost, node: str) -> int:
    return sum(1 for r in host.of("NBIRTH") if r.node == node)


def _all(hub: FleetHub, version: int, status: str, agents: tuple[str, ...] = AGENTS) -> bool:
    return all(hub.reports(agent, version=version, status=status) for agent in agents)


async def test_five_agents_enrol_deploy_roll_back_converge_survive_kill_and_are_revoked(
    broker: EmbeddedBroker, tmp_path: Path, unique_topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_dir = broker.data_dir  # the hub's data dir: fleet versions and the broker's runtime accounts
    common = ["--broker", str(broker.url), "--enterprise", ENTERPRISE, "--data-dir", str(hub_dir)]

    async def fleet(*args: str) -> str:
        assert await asyncio.to_thread(main, ["fleet", *args, *common, "--author", "test"]) == 0
        return capsys.readouterr().out

    tokens = {}
    for agent in AGENTS:
        nodes = ["--edge-node", f"{GROUP}/press-{agent}", "--edge-node", f"{GROUP}/slow-{agent}"]
        tokens[agent] = (await fleet("enrol", agent, *nodes, "--label", "site=s1")).splitlines()[1]
    assert all(token not in (hub_dir / "accounts.json").read_text() for token in tokens.values())

    root, source = unique_topic, str(broker.url)
    source_topic = {agent: f"{root}/{agent}" for agent in AGENTS}
    v1 = _file(tmp_path, "v1", [_press(root, source)])
    v2 = _file(tmp_path, "v2", [_press(root, source, replay_window_s=1.0)])
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    v3 = _file(tmp_path, "v3", [_press(root, source, buffer_dir=str(blocker))])  # valid, cannot start
    v4 = _file(tmp_path, "v4", [_press(root, source, replay_window_s=2.0)])
    # v5 adds a bridge waiting for a host that never comes: applying it lasts --birth-wait (5 s)
    slow = json_bridge("slow-${agent}", GROUP, f"{root}/slow", primary_host_id="absent-host")
    slow["source_broker"] = source
    v5 = _file(tmp_path, "v5", [_press(root, source, replay_window_s=2.0), slow])

    async with (
        checked_host(broker.url.port, GROUP) as host,
        open_hub(broker.url, hub_dir / "fleet") as hub,
        contextlib.AsyncExitStack() as stack,
    ):

        async def start(agent: str, *extra: str, version: str = "") -> subprocess.Popen[str]:
            context = edge_process(broker.url, tmp_path / agent, agent, *extra, version=version)
            return await stack.enter_async_context(context)

        # enrolment: each agent's first CONNECT creates its account; its password stays on the agent (0600)
        procs = dict(
            zip(AGENTS, await asyncio.gather(*(start(a, "--enrol-token", tokens[a]) for a in AGENTS)), strict=True)
        )
        password = (tmp_path / "a1" / "agent" / "password").stat()
        assert stat.S_IMODE(password.st_mode) == 0o600
        await fleet("deploy", v1, "--label", "site=s1")
        await until(lambda: _all(hub, 1, "running"), within_s=30, what="v1 on all five")
        await until(lambda: all(_births(host, f"press-{a}") == 1 for a in AGENTS), within_s=10, what="five births")

        # v2 to all: each reports it and rebirths
        await fleet("deploy", v2, "--label", "site=s1")
        await until(lambda: _all(hub, 2, "running"), within_s=30, what="v2 on all five")
        await until(lambda: all(_births(host, f"press-{a}") == 2 for a in AGENTS), within_s=15, what="five rebirths")

        # a broken v3: rolled back to v2 on all, reported, and data keeps flowing
        await fleet("deploy", v3, "--all")
        await until(lambda: _all(hub, 2, "failed"), within_s=30, what="v3 rolled back on all five")
        assert all("rolled back to version 2" in str(hub.status[a]["reason"]) for a in AGENTS)
        assert all(hub.status[a]["desired"] == 3 for a in AGENTS)
        for agent in AGENTS:
            await hub.client.publish(source_topic[agent], b'{"t": 3.5}', qos=1)
        await until(lambda: all(3.5 in _values(host, f"press-{a}") for a in AGENTS), within_s=15, what="data after v3")

        # a5 is away during the v4 deploy and converges when it returns (no token: its stored password);
        # a4 is killed with -9 while it applies v5, samples numbered 1..N flowing all along: none is lost
        sent = 0

        async def numbered() -> None:
            nonlocal sent
            while True:
                await hub.client.publish(source_topic["a4"], json.dumps({"t": sent + 1}).encode(), qos=1)
                sent += 1
                await asyncio.sleep(0.02)

        feeder = asyncio.create_task(numbered(), name="test.numbered")
        procs["a5"].send_signal(signal.SIGTERM)
        await asyncio.to_thread(procs["a5"].wait, 20)
        await until(lambda: hub.status["a5"].get("status") == "offline", within_s=15, what="a5 offline")
        await fleet("deploy", v4, "--label", "site=s1")
        await until(lambda: _all(hub, 4, "running", AGENTS[:4]), within_s=30, what="v4 on a1-a4")
        await fleet("deploy", v5, "--agent", "a4")
        await until(lambda: hub.status["a4"].get("status") == "applying", within_s=15, what="v5 applying on a4")
        procs["a4"].kill()
        await asyncio.to_thread(procs["a4"].wait, 10)
        await until(lambda: hub.status["a4"].get("status") == "offline", within_s=15, what="a4's will says offline")
        # both come back at once: a4 on its last good version from disk, a5 on the v2 it had; a4 applies v5
        # again, its absent-host bridge holding the apply for --birth-wait: 1 s, as nothing is killed this time
        await asyncio.gather(start("a4", "--birth-wait", "1", version="4"), start("a5", version="2"))
        await until(lambda: hub.reports("a5", version=4, status="running"), within_s=30, what="a5 converges on v4")
        await until(lambda: hub.reports("a4", version=5, status="running"), within_s=40, what="a4 on v5 at last")
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        last = sent
        expected = {float(n) for n in range(1, last + 1)}
        await until(lambda: expected <= _values(host, "press-a4"), within_s=15, what=f"samples 1..{last} of a4")
        assert last > 50

        # a3 revoked: its connections are dropped and it is refused from then on; the others carry on
        failures = broker.stats.auth_failures
        out = await fleet("revoke", "a3")
        assert "a3: account revoked" in out
        await until(lambda: hub.status["a3"].get("status") == "offline", within_s=15, what="a3 dropped (its will)")
        await until(lambda: broker.stats.auth_failures > failures, within_s=15, what="a3's reconnects refused")
        own = (tmp_path / "a3" / "agent" / "password").read_text().strip()
        with pytest.raises(BrokerError, match="not authorized"):
            async with MqttClient(url=broker.url.with_credentials("a3", own), client_id="a3-again", reconnect=False):
                pass
        listing = await fleet("list")
        assert "a3: desired v4" in listing
        assert "reported revoked; account revoked" in listing
        await hub.client.publish(source_topic["a1"], b'{"t": 9.5}', qos=1)
        await until(lambda: 9.5 in _values(host, "press-a1"), within_s=15, what="a1's data after the revocation")
        assert hub.status["a3"].get("status") == "offline"
