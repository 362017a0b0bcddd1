"""``uns fleet`` through the CLI's entry point: deploy, refused deploy, diff, rollback, list."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
import yaml

from bridges.fleet import EdgeAgent
from hub.cli import main
from tests.bridges.edge.spb_host import SpbHost
from tests.bridges.fleet.rig import ENTERPRISE, json_bridge
from tests.fixtures.mosquitto import free_port
from tests.fixtures.running import running
from tests.fixtures.waiting import next_json, until
from uns.broker.embedded import EmbeddedBroker
from uns.connect import network_clients
from uns.mqtt.client import MqttClient


def _file(tmp_path: Path, name: str, bridges: list[dict[str, object]]) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"bridges": bridges}))
    return str(path)


async def _retained(broker: EmbeddedBroker, topic: str) -> dict[str, object]:
    async with MqttClient(url=broker.url, client_id="fleet-cli-test-reader") as client:
        await client.subscribe([topic], qos=1)
        return await next_json(client, within_s=5, what=f"the retained {topic}")


async def test_deploy_diff_rollback_and_list(
    broker: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--broker", str(broker.url), "--enterprise", ENTERPRISE, "--data-dir", str(tmp_path / "hub")]

    async def fleet(*args: str) -> int:
        return await asyncio.to_thread(main, ["fleet", *args, *common])

    v1 = _file(tmp_path, "v1", [json_bridge("n1", "g", "t/a")])
    v2 = _file(tmp_path, "v2", [json_bridge("n1", "g", "t/a", unit="degF")])
    assert await fleet("deploy", v1, "--agent", "l1", "--agent", "l2", "--note", "first") == 0
    assert await fleet("deploy", v2, "--agent", "l1") == 0
    out = capsys.readouterr().out
    assert "l1: version 1 (" in out
    assert "l2: version 1 (" in out
    assert "l1: version 2 (" in out

    bad = json_bridge("n1", "g", "t/a")
    bad["devices"] = []
    assert await fleet("deploy", _file(tmp_path, "bad", [bad]), "--agent", "l1") == 2
    assert "bridges[0].mqtt_json.devices: List should have at least 1 item" in capsys.readouterr().err

    assert await fleet("diff", "1", "2", "--agent", "l1") == 0
    diff = capsys.readouterr().out
    assert "-      unit: degC\n" in diff
    assert "+      unit: degF\n" in diff

    assert await fleet("rollback", "1", "--agent", "l1") == 0
    assert "l1: version 3 (" in capsys.readouterr().out
    published = await _retained(broker, f"{ENTERPRISE}/hub/edge/l1/config")
    assert published["version"] == 3
    assert published["note"] == "rollback to 1"
    assert published["config"] == {"bridges": [json_bridge("n1", "g", "t/a")]}

    # no difference is said, not left as empty output: the same version twice, or a rollback and its source
    assert await fleet("diff", "3", "3", "--agent", "l1") == 0
    assert capsys.readouterr().out == "l1: no differences between v3 and v3\n"
    assert await fleet("diff", "1", "3", "--agent", "l1") == 0
    assert capsys.readouterr().out == "l1: no differences between v1 and v3\n"

    assert await fleet("list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith("l1: desired v3 ")
    assert listed[0].endswith("by cli; reported nothing yet")
    assert listed[1].startswith("l2: desired v1 ")

    assert await fleet("rollback", "9", "--agent", "l1") == 2
    assert "no such version" in capsys.readouterr().err


async def test_list_shows_a_status_without_a_version_as_it_is(
    broker: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an agent's will (and a clean stop) leaves {"agent", "status": "offline"}: no version to print ("vNone")
    common = ["--broker", str(broker.url), "--enterprise", ENTERPRISE, "--data-dir", str(tmp_path / "hub")]
    v1 = _file(tmp_path, "v1", [json_bridge("n1", "g", "t/a")])
    assert await asyncio.to_thread(main, ["fleet", "deploy", v1, "--agent", "l1", *common]) == 0
    async with MqttClient(url=broker.url, client_id="fleet-cli-test-agent") as agent:
        await agent.publish(
            f"{ENTERPRISE}/hub/edge/l1/status", b'{"agent": "l1", "status": "offline"}', qos=1, retain=True
        )
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["fleet", "list", *common]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1
    assert listed[0].startswith("l1: desired v1 ")
    assert listed[0].endswith("by cli; reported offline")


async def test_a_staged_deploy_to_a_label_stops_at_a_failing_first_agent(
    broker: EmbeddedBroker, tmp_path: Path, unique_topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--broker", str(broker.url), "--enterprise", ENTERPRISE, "--data-dir", str(tmp_path / "hub")]

    async def fleet(*args: str) -> int:
        return await asyncio.to_thread(main, ["fleet", *args, *common])

    source = f"{unique_topic}/mixer"
    host = SpbHost(broker.url.port, "g", "g-host")
    await host.start(online=True)
    # one file for every agent: ${agent} gives each its own edge node id
    good = _file(tmp_path, "good", [json_bridge("press-${agent}", "g", source)])
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    broken = _file(tmp_path, "broken", [json_bridge("press-${agent}", "g", source, buffer_dir=str(blocker))])
    assert await fleet("label", "line=l1", "--agent", "a", "--agent", "b") == 0
    assert await fleet("label", "line=l2", "--agent", "c") == 0
    assert await fleet("deploy", good, "--all") == 0
    agents = [
        EdgeAgent(agent_id=name, enterprise=ENTERPRISE, clients=network_clients(broker.url),
                  data_dir=tmp_path / name, status_interval_s=0.2)
        for name in ("a", "b", "c")
    ]  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        for agent in agents:
            await stack.enter_async_context(running(agent, name=f"test.agent.{agent.agent_id}"))
        await until(lambda: all(a.status.version == 1 and a.status.status == "running" for a in agents))
        capsys.readouterr()
        assert await fleet("deploy", broken, "--label", "line=l1", "--staged") == 1
        out = capsys.readouterr().out
        assert "a: version 2 failed: failed to apply: bridge press-a:" in out
        assert out.rstrip().endswith("not deployed to b")
        assert [a.status.version for a in agents] == [1, 1, 1]

        assert await fleet("deploy", good, "--label", "line=l1", "--staged") == 0
        await until(lambda: agents[1].status.version == 2, what="b on the new version")
        assert (agents[0].status.version, agents[0].status.status) == (3, "running")
        assert agents[2].status.version == 1  # line l2 was not selected
    host.stop()
    assert host.violations == []


async def test_list_says_when_there_are_no_agents_and_when_the_broker_does_not_answer(
    broker: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--enterprise", ENTERPRISE, "--data-dir", str(tmp_path / "hub")]
    assert await asyncio.to_thread(main, ["fleet", "list", "--broker", str(broker.url), *data]) == 0
    empty = capsys.readouterr()
    assert empty.out == ""  # stdout is one line per agent
    assert empty.err.splitlines()[-1] == (  # after the client's log lines
        f"uns fleet list: no agents in {tmp_path / 'hub' / 'fleet'} nor on the broker"
        " (deploy a config to one: uns fleet deploy FILE --agent NAME)"
    )

    v1 = _file(tmp_path, "v1", [json_bridge("n1", "g", "t/a")])
    assert (
        await asyncio.to_thread(main, ["fleet", "deploy", v1, "--agent", "l1", "--broker", str(broker.url), *data]) == 0
    )
    capsys.readouterr()
    away = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    assert await asyncio.to_thread(main, ["fleet", "list", "--broker", away, *data]) == 1
    listed = capsys.readouterr()
    assert listed.out.startswith("l1: desired v1 ")
    assert listed.out.endswith("by cli; reported unknown\n")  # not "nothing yet": nothing could be asked
    note = listed.err.splitlines()[-1]
    assert note.startswith(f"uns fleet list: broker {away}")
    assert note.endswith(": what the agents report is unknown")
