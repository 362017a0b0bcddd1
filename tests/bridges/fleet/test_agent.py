"""An edge agent in-process against the embedded broker: versions applied, refused and rolled back."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from bridges.fleet import EdgeAgent
from tests.bridges.edge.spb_host import SpbHost
from tests.bridges.fleet.rig import ENTERPRISE, checked_host, json_bridge, open_hub
from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.running import running, running_task
from tests.fixtures.waiting import until
from uns.broker import hash_password
from uns.broker.embedded import EmbeddedBroker
from uns.connect import network_clients
from uns.fleet import FleetStore
from uns.mqtt.types import BrokerUrl

GROUP = "fleet"


def _agent(broker: EmbeddedBroker, data_dir: Path, agent_id: str = "line1") -> EdgeAgent:
    return EdgeAgent(
        agent_id=agent_id,
        enterprise=ENTERPRISE,
        clients=network_clients(broker.url),
        data_dir=data_dir,
        status_interval_s=0.2,
        birth_wait_s=5.0,
    )


def _unit(host: SpbHost) -> str:
    """The engUnit of Temperature in the last DBIRTH."""
    metric = next(m for m in host.of("DBIRTH")[-1].payload.metrics if m.name == "Temperature")
    props = metric.properties
    return str(props.values[list(props.keys).index("engUnit")].string_value)


async def test_v1_v2_then_a_broken_and_a_failing_version_are_rolled_back(
    broker: EmbeddedBroker, tmp_path: Path, unique_topic: str
) -> None:
    source = f"{unique_topic}/mixer"
    async with (
        checked_host(broker.url.port, GROUP) as host,
        open_hub(broker.url, tmp_path / "hub") as hub,
        _agent(broker, tmp_path / "agent") as agent,
    ):
        await hub.deploy("line1", {"bridges": [json_bridge("press1", GROUP, source)]})
        async with running_task(agent, name="test.agent"):
            await until(lambda: hub.reports("line1", version=1, status="running"), what="v1 running")
            await until(lambda: host.count("DBIRTH") == 1, what="v1 births")
            await hub.client.publish(source, b'{"t": 1.5}', qos=1)
            await until(lambda: host.values("mixer", "Temperature") == [(1.5, False)], what="v1 data")

            # v2 changes the bridge: it is restarted, births again, and the agent reports v2
            await hub.deploy("line1", {"bridges": [json_bridge("press1", GROUP, source, unit="degF")]})
            await until(lambda: hub.reports("line1", version=2, status="running"), what="v2 running")
            # the agent's report and the bridge's births travel separately: wait for the births to arrive
            await until(lambda: host.count("DBIRTH") == 2, what="v2 births")
            assert host.count("NBIRTH") == 2
            assert _unit(host) == "degF"

            # v3 fails validation: refused with the field named, v2 keeps running untouched
            broken = json_bridge("press1", GROUP, source)
            broken["devices"] = []
            await hub.deploy("line1", {"bridges": [broken]}, validate=False)
            await until(lambda: hub.reports("line1", version=2, status="failed"), what="v3 refused")
            status = hub.status["line1"]
            assert status["desired"] == 3
            assert "devices" in str(status["reason"])
            assert "List should have at least 1 item" in str(status["reason"])
            await hub.client.publish(source, b'{"t": 3.5}', qos=1)
            await until(lambda: (3.5, False) in host.values("mixer", "Temperature"), what="data under v3")
            assert host.count("NBIRTH") == 2  # nothing was restarted

            # v4 is valid but cannot start (its buffer dir is a file): rolled back to v2, births again
            blocker = tmp_path / "not-a-dir"
            blocker.write_text("x")
            await hub.deploy("line1", {"bridges": [json_bridge("press1", GROUP, source, buffer_dir=str(blocker))]})
            await until(lambda: hub.status["line1"].get("desired") == 4, what="v4 seen")
            await until(lambda: hub.reports("line1", version=2, status="failed"), what="v4 rolled back")
            assert "failed to apply" in str(hub.status["line1"]["reason"])
            assert "rolled back to version 2" in str(hub.status["line1"]["reason"])
            await until(lambda: host.count("NBIRTH") == 3, what="v2 births again")
            await hub.client.publish(source, b'{"t": 4.5}', qos=1)
            await until(lambda: (4.5, False) in host.values("mixer", "Temperature"), what="data after rollback")
            good = json.loads((tmp_path / "agent" / "agent" / "good.json").read_text())
            assert good["version"] == 2
            # v4 delivered again (as on a reconnect) is not retried: v5 restarts the bridge once more, only
            await hub.publish(hub.store.get("line1", 4))
            await hub.deploy("line1", {"bridges": [json_bridge("press1", GROUP, source, unit="K")]})
            await until(lambda: hub.reports("line1", version=5, status="running"), what="v5 running")
            await until(lambda: host.count("NBIRTH") >= 4, what="v5 births")
            assert host.count("NBIRTH") == 4
            health = hub.status["line1"]["bridges"]
            assert isinstance(health, list)
            assert [b["node"] for b in health] == ["press1"]


async def test_an_agent_reports_itself_as_it_connects_not_at_its_first_status_tick(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    # a new agent has no version yet: nothing else makes it publish, and its will's "offline" (retained from its
    # last stop) was all `uns fleet list` and the Edges page showed until the first tick, 10 s by default
    async with open_hub(broker.url, tmp_path / "hub") as hub:
        agent = EdgeAgent(
            agent_id="line3", enterprise=ENTERPRISE, clients=network_clients(broker.url), data_dir=tmp_path / "agent",
            status_interval_s=60.0, birth_wait_s=5.0,
        )  # fmt: skip
        async with agent, running_task(agent, name="test.agent"):
            await until(lambda: hub.status.get("line3", {}).get("status") == "running", what="running reported")
            assert hub.status["line3"]["version"] is None
        await until(lambda: hub.status["line3"].get("status") == "offline", what="offline on its stop")


async def test_an_agent_offline_during_a_deploy_converges_when_it_returns(
    broker: EmbeddedBroker, tmp_path: Path, unique_topic: str
) -> None:
    async with checked_host(broker.url.port, GROUP) as host:
        source = f"{unique_topic}/mixer"
        async with open_hub(broker.url, tmp_path / "hub") as hub:
            await hub.deploy("line2", {"bridges": [json_bridge("press2", GROUP, source)]})
            async with (
                _agent(broker, tmp_path / "agent", "line2") as agent,
                running_task(agent, name="test.agent"),
            ):
                await until(lambda: hub.reports("line2", version=1, status="running"), what="v1 running")
            await until(lambda: hub.status["line2"].get("status") == "offline", what="offline reported")
            # deployed while the agent is away: the retained version waits for it
            await hub.deploy("line2", {"bridges": [json_bridge("press2", GROUP, source, unit="degF")]})
            async with _agent(broker, tmp_path / "agent", "line2") as agent:
                assert agent.status.version == 1  # it starts from its last good version on disk
                async with running_task(agent, name="test.agent"):
                    await until(lambda: hub.reports("line2", version=2, status="running"), what="v2 on return")
    # v1 born, then v2 (v1 started again from disk may be replaced before it births: no wait on the way up)
    assert _unit(host) == "degF"


async def test_an_agent_runs_under_its_own_bridge_account(tmp_path: Path, unique_topic: str) -> None:
    # the account of docs/fleet.md#security: role bridge, its edge nodes, its agent id; nothing else
    agent_user = {"password_hash": hash_password("pw"), "role": "bridge", "edge_nodes": [f"{GROUP}/press9"]}
    config = broker_test_config(users={"agent9": {**agent_user, "edge_agent": "line9"}})
    async with start_broker(tmp_path, config) as broker:
        host = SpbHost(broker.url.port, GROUP, f"{GROUP}-host")
        await host.start(online=True)
        source = f"{unique_topic}/mixer"
        agent = EdgeAgent(
            agent_id="line9",
            enterprise=ENTERPRISE,
            clients=network_clients(broker.url.with_credentials("agent9", "pw")),
            data_dir=tmp_path / "agent",
            status_interval_s=0.2,
        )
        try:
            async with open_hub(broker.url, tmp_path / "hub") as hub, agent:
                # the devices publish on the broker anonymously: the agent's account reads no plant topic
                bridge = json_bridge("press9", GROUP, source)
                bridge["source_broker"] = str(broker.url)
                await hub.deploy("line9", {"bridges": [bridge]})
                async with running_task(agent, name="test.agent"):
                    await until(lambda: hub.reports("line9", version=1, status="running"), what="v1 running")
                    await hub.client.publish(source, b'{"t": 9.5}', qos=1)
                    await until(lambda: (9.5, False) in host.values("mixer", "Temperature"), what="data")
        finally:
            host.stop()
        assert host.violations == []
        assert broker.stats.acl_denial_reasons == {}  # the account was enough, and nothing more was tried


async def test_a_last_good_version_that_cannot_start_without_the_broker_starts_when_it_comes(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on, yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = BrokerUrl.from_str(f"mqtt://127.0.0.1:{port}")
    store = FleetStore(directory=tmp_path / "hub")
    # MQTT-JSON sources read from the broker: they cannot start while it is away
    bridges = [json_bridge(f"press{n}", GROUP, f"t/{n}") for n in (1, 2)]
    good = store.deploy("line3", {"bridges": bridges}, author="test")
    (tmp_path / "agent" / "agent").mkdir(parents=True)
    (tmp_path / "agent" / "agent" / "good.json").write_text(good.model_dump_json())
    agent = EdgeAgent(
        agent_id="line3", enterprise=ENTERPRISE, clients=network_clients(url), data_dir=tmp_path / "agent",
        status_interval_s=0.2, birth_wait_s=0.5,  # no primary host comes online here
    )  # fmt: skip
    async with running(agent, name="test.agent"):
        await until(lambda: "does not start" in str(agent.status.reason), what="the start from disk refused")
        assert agent.status.bridges == []
        config = broker_test_config(listeners={"tcp": {"bind": "127.0.0.1", "port": port}})
        async with start_broker(tmp_path, config):
            # no desired version was ever published here: the agent retries its own on connecting
            await until(
                lambda: agent.status.status == "running" and len(agent.status.bridges) == 2,
                within_s=15,
                what=f"the last good version running once the broker is there: {agent.status}",
            )
            assert agent.status.version == 1
            assert agent.status.reason is None
