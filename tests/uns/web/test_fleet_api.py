"""The fleet HTTP API against the embedded broker and a real in-process edge agent: list, diff, deploy, roll back."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridges.fleet import EdgeAgent
from model.broker_config import UserConfig
from model.fleet import AgentStatus
from tests.bridges.fleet.rig import ENTERPRISE, checked_host, json_bridge
from tests.exports import assert_all_is_honest
from tests.fixtures.passwords import quick_hash
from tests.fixtures.running import running, running_task
from tests.fixtures.waiting import until
from tests.uns.web.serving import serve_with_auth
from uns.broker.embedded import EmbeddedBroker
from uns.connect import network_clients
from uns.fleet import FleetStore
from uns.web.auth import WebAuth
from uns.web.fleet_api import FleetService
from uns.web.fleet_view import FleetView

GROUP = "fleetapi"
STATUS = f"{ENTERPRISE}/hub/edge/line1/status"


def _auth() -> WebAuth:
    users = {
        "vera": UserConfig(password_hash=quick_hash("vera-secret"), role="viewer"),
        "hana": UserConfig(password_hash=quick_hash("hana-secret"), role="host"),
        "spike": UserConfig(password_hash=quick_hash("spike-secret"), role="viewer", read_sparkplug=True),
    }
    return WebAuth(users=users, secret=b"s" * 32)


async def _login(client: httpx.AsyncClient, user: str) -> None:
    answer = await client.post("/api/login", json={"username": user, "password": f"{user}-secret"})
    assert answer.status_code == 200, answer.text


@contextlib.asynccontextmanager
async def _hub(broker: EmbeddedBroker, directory: Path) -> AsyncIterator[tuple[FleetService, httpx.AsyncClient]]:
    store = FleetStore(directory=directory)
    fleet = FleetService(clients=network_clients(broker.url), store=store, enterprise=ENTERPRISE)
    async with running(fleet, name="test.fleet"), serve_with_auth(_auth(), routes=fleet.routes()) as client:
        yield fleet, client


def _line1(fleet: FleetService) -> Any:
    """line1 as ``GET /api/fleet/agents`` lists it (without a request: waits poll it)."""
    return next(a for a in fleet.agents() if a["agent"] == "line1")


async def test_an_agent_is_listed_deployed_to_diffed_and_rolled_back_over_http(
    broker: EmbeddedBroker, tmp_path: Path, unique_topic: str
) -> None:
    source = f"{unique_topic}/mixer"
    agent = EdgeAgent(
        agent_id="line1", enterprise=ENTERPRISE, clients=network_clients(broker.url), data_dir=tmp_path / "agent",
        status_interval_s=0.2, birth_wait_s=5.0,
    )  # fmt: skip
    v1 = {"bridges": [json_bridge("press-${agent}", GROUP, source)]}
    v2 = {"bridges": [json_bridge("press-${agent}", GROUP, source, unit="degF")]}
    async with checked_host(broker.url.port, GROUP), _hub(broker, tmp_path / "hub") as (fleet, http), agent:
        await _login(http, "hana")
        # a dry run shows the diff and stores nothing; the deploy stores v1 (${agent} resolved) and publishes it
        preview = await http.post("/api/fleet/deploy", json={"agents": ["line1"], "config": v1, "dry_run": True})
        assert preview.status_code == 200, preview.text
        assert "+  name: press-line1" in preview.json()["agents"][0]["diff"]
        assert fleet.store.agents() == []
        deployed = await http.post("/api/fleet/deploy", json={"agents": ["line1"], "config": v1, "note": "first"})
        assert deployed.status_code == 201, deployed.text
        assert deployed.json()["deployed"][0]["version"] == 1
        async with running_task(agent, name="test.agent"):
            await until(lambda: _line1(fleet)["in_sync"], within_s=15, what="v1 reported")
            await until(lambda: _line1(fleet)["health"]["bridges_online"] == 1, what="its bridge online")
            async with network_clients(broker.url)(client_id="test-feeder") as feeder:
                for value in (1.5, 2.5):
                    await feeder.publish(source, json.dumps({"t": value}).encode(), qos=1)
            await until(lambda: _line1(fleet)["bridges"][0]["read_latency_ms"] is not None, what="a read latency")

            listed = (await http.get("/api/fleet/agents")).json()["agents"]
            line1 = next(a for a in listed if a["agent"] == "line1")
            assert (line1["online"], line1["status"]) == (True, "running")
            assert line1["desired"]["version"] == line1["reported"]["version"] == 1
            assert line1["desired"]["author"] == "hana"
            assert line1["desired"]["note"] == "first"
            health = line1["health"]
            assert health["errors"] == 0
            assert health["read_latency_ms"] >= 0
            assert health["last_seen_ms"] > 0
            assert line1["bridges"][0]["node"] == "press-line1"

            # v2 from YAML text; then a broken v3 refused with the field named, nothing stored
            assert (await http.post("/api/fleet/deploy", json={"agents": ["line1"], "config": v2})).status_code == 201
            await until(lambda: _line1(fleet)["reported"]["version"] == 2, within_s=15, what="v2 reported")
            broken = await http.post(
                "/api/fleet/deploy", json={"agents": ["line1"], "config_yaml": "bridges: [{kind: mqtt_json}]"}
            )
            assert broken.status_code == 422
            assert any("bridges" in problem for problem in broken.json()["problems"])
            versions = (await http.get("/api/fleet/agents/line1/versions")).json()["versions"]
            assert [v["version"] for v in versions] == [2, 1]
            diff = (await http.get("/api/fleet/agents/line1/diff", params={"old": 1, "new": 2})).json()["diff"]
            assert "-      unit: degC" in diff
            assert "+      unit: degF" in diff

            # a rollback's dry run shows the way back; the rollback is v3 with v1's content, and runs
            back = await http.post("/api/fleet/rollback", json={"agent": "line1", "to": 1, "dry_run": True})
            assert "+      unit: degC" in back.json()["agents"][0]["diff"]
            rolled = await http.post("/api/fleet/rollback", json={"agent": "line1", "to": 1})
            assert rolled.status_code == 201
            assert rolled.json()["deployed"][0]["version"] == 3
            await until(lambda: _line1(fleet)["reported"]["version"] == 3, within_s=15, what="v3 reported")
            assert fleet.store.get("line1", 3).hash == fleet.store.get("line1", 1).hash
            missing = await http.post("/api/fleet/rollback", json={"agent": "line1", "to": 9})
            assert missing.status_code == 404
            assert "no version 9" in missing.json()["error"]
        # a clean stop says offline: the listing shows it, with the problem noted
        await until(lambda: not _line1(fleet)["online"], what="offline")
        assert _line1(fleet)["status"] == "offline"
        assert "went offline" in _line1(fleet)["problems"][0]["text"]


async def test_a_viewer_reads_the_fleet_and_is_refused_deploys(broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with _hub(broker, tmp_path / "hub") as (fleet, http):
        fleet.store.deploy("line1", {"bridges": []}, author="test")
        await _login(http, "vera")
        listed = await http.get("/api/fleet/agents")
        assert listed.status_code == 200
        assert listed.json()["agents"][0]["status"] == "never seen"
        assert (await http.get("/api/fleet/agents/line1/versions")).status_code == 200
        # a version's config holds connector credentials: the broker delivers its topic to host and admin only
        for path in ("/api/fleet/agents/line1/versions/1", "/api/fleet/agents/line1/diff?old=1&new=1"):
            config = await http.get(path)
            assert config.status_code == 403, path
            assert config.json()["field"] == "config"
            assert "needs role host or admin" in config.json()["error"]
        assert (await http.get("/api/health")).json()["auth"]["forbidden"] == 2  # counted as the middleware's are
        for path, body in (
            ("/api/fleet/deploy", {"agents": ["line1"], "config": {"bridges": []}}),
            ("/api/fleet/rollback", {"agent": "line1", "to": 1}),
        ):
            refused = await http.post(path, json=body)
            assert refused.status_code == 403, path
        assert [v.version for v in fleet.store.versions("line1")] == [1]
        await _login(http, "hana")
        version = await http.get("/api/fleet/agents/line1/versions/1")
        assert (version.status_code, version.json()["config"]) == (200, {"bridges": []})
        assert (await http.get("/api/fleet/agents/line1/diff?old=1&new=1")).json()["diff"] == ""


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"agents": ["line1"]}, 400, "config"),
        ({"agents": ["line1"], "config": {"bridges": []}, "config_yaml": "bridges: []"}, 400, "config"),
        ({"agents": ["Not A Slug"], "config": {"bridges": []}}, 400, "agents"),
        ({"config": {"bridges": []}}, 400, "agents"),
        ({"agents": ["line1"], "config_yaml": "bridges: [unclosed"}, 400, "config_yaml"),
        ({"agents": ["line1"], "config_yaml": "- a list"}, 400, "config_yaml"),
        ({"agents": ["line1"], "config_yaml": "# nothing to deploy"}, 400, "config_yaml"),
        ({"agents": ["line1"], "config_yaml": "{}"}, 400, "config_yaml"),  # an empty mapping deploys nothing either
        ({"agents": ["line1"], "config": {"bridges": []}, "staged": "yes"}, 400, "staged"),
        ({"agents": ["line1"], "from": {"agent": "nobody", "version": 1}}, 404, "agent"),
    ],
)
async def test_bad_deploy_requests_name_the_field(
    broker: EmbeddedBroker, tmp_path: Path, body: dict[str, object], status: int, field: str
) -> None:
    async with _hub(broker, tmp_path / "hub") as (fleet, http):
        await _login(http, "hana")
        answer = await http.post("/api/fleet/deploy", json=body)
        assert answer.status_code == status, answer.text
        assert answer.json()["field"] == field
        assert fleet.store.agents() == []


async def test_config_yaml_is_read_by_the_settings_loader_and_bridges_empty_clears_an_agent(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    async with _hub(broker, tmp_path / "hub") as (fleet, http):
        await _login(http, "hana")
        broken = await http.post("/api/fleet/deploy", json={"agents": ["line1"], "config_yaml": "bridges: [unclosed"})
        assert broken.json()["error"].startswith("config_yaml: YAML syntax error at line 1, column 19: ")
        listed = await http.post("/api/fleet/deploy", json={"agents": ["line1"], "config_yaml": "- bridges"})
        assert listed.json()["error"] == "config_yaml: must be a YAML mapping of keys to values, not a list"
        empty = await http.post("/api/fleet/deploy", json={"agents": ["line1"], "config": {}})  # as JSON, as YAML
        assert empty.status_code == 422, empty.text
        assert empty.json()["problems"] == [
            "fleet/line1: bridges: missing: list the agent's bridges (bridges: [] stops them all)"
        ]
        cleared = await http.post("/api/fleet/deploy", json={"agents": ["line1"], "config_yaml": "bridges: []  # none"})
        assert cleared.status_code == 201, cleared.text
        assert fleet.store.get("line1", 1).config == {"bridges": []}


def test_the_view_keeps_statuses_problems_and_counts_bad_ones() -> None:
    view = FleetView(enterprise="acme")
    assert view.observe(STATUS, b"{not json", 1) is not None
    assert view.bad_statuses == 1
    failed = AgentStatus(agent="line1", status="failed", version=2, desired=3, reason="bridge x: cannot start")
    assert view.observe(STATUS, failed.model_dump_json().encode(), 10) is None
    assert view.observe(STATUS, failed.model_dump_json().encode(), 11) is None  # the same reason: noted once
    view.observe("acme/hub/edge/other/config", b"{}", 12)  # not a status topic: ignored
    document = view.document("line1", None, {"line": "l1"})
    assert (document["online"], document["status"], document["labels"]) == (True, "failed", {"line": "l1"})
    assert document["problems"] == [{"time_ms": 10, "text": "version 3: bridge x: cannot start"}]
    view.observe(STATUS, b'{"agent": "line1", "status": "offline"}', 20)
    after = view.document("line1", None, {})
    assert (after["online"], after["status"]) == (False, "offline")
    assert after["reported"] is not None  # the last full status stays for the page
    assert view.agents() == ["line1"]


def test_the_module_exports_what_it_defines() -> None:
    assert_all_is_honest("uns.web.fleet_api")
    assert_all_is_honest("uns.web.fleet_view")


async def test_enrol_and_revoke_over_http_for_configuration_roles_only(broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with _hub(broker, tmp_path / "fleet") as (fleet, http):
        await _login(http, "vera")
        assert (await http.post("/api/fleet/enrol", json={"agent": "line7"})).status_code == 403
        await _login(http, "hana")
        enrolled = await http.post("/api/fleet/enrol", json={"agent": "line7", "labels": {"site": "dallas"}})
        assert enrolled.status_code == 201, enrolled.text
        assert len(enrolled.json()["token"]) > 20
        assert enrolled.json()["account"]["state"] == "pending"
        line7: Any = next(a for a in fleet.agents() if a["agent"] == "line7")
        assert (line7["account"]["state"], line7["labels"]) == ("pending", {"site": "dallas"})
        bad = await http.post("/api/fleet/enrol", json={"agent": "Line 7"})
        assert bad.status_code == 400
        revoked = await http.post("/api/fleet/revoke", json={"agent": "line7"})
        assert revoked.status_code == 200, revoked.text
        line7 = next(a for a in fleet.agents() if a["agent"] == "line7")
        assert line7["account"]["state"] == "revoked"
        assert (await http.post("/api/fleet/revoke", json={"agent": "nobody"})).status_code == 404


async def test_an_agent_s_edge_nodes_are_listed_only_to_readers_the_broker_gives_their_births(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    # a status names its bridges' nodes, never their group: only Sparkplug readers may learn the groups
    async with _hub(broker, tmp_path / "fleet") as (_, http):
        await _login(http, "hana")
        enrolled = await http.post("/api/fleet/enrol", json={"agent": "line7", "edge_nodes": ["grp7/edge7", "grp8/+"]})
        assert enrolled.json()["account"]["edge_nodes"] == ["grp7/edge7", "grp8/+"]
        for user, nodes in (("hana", ["grp7/edge7", "grp8/+"]), ("spike", ["grp7/edge7", "grp8/+"]), ("vera", None)):
            await _login(http, user)
            (line7,) = (await http.get("/api/fleet/agents")).json()["agents"]
            assert (line7["account"]["state"], line7["account"]["edge_nodes"]) == ("pending", nodes), user


async def test_a_staged_deploy_stops_at_a_first_agent_that_rolls_back_and_goes_on_after_a_healthy_one(
    broker: EmbeddedBroker, tmp_path: Path, unique_topic: str
) -> None:
    source = f"{unique_topic}/mixer"
    agents = [
        EdgeAgent(
            agent_id=name,
            enterprise=ENTERPRISE,
            clients=network_clients(broker.url),
            data_dir=tmp_path / name,
            status_interval_s=0.2,
            birth_wait_s=5.0,
        )
        for name in ("line1", "line2")
    ]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    good = {"bridges": [json_bridge("press-${agent}", GROUP, source)]}
    broken = {"bridges": [json_bridge("press-${agent}", GROUP, source, buffer_dir=str(blocker))]}
    better = {"bridges": [json_bridge("press-${agent}", GROUP, source, unit="degF")]}
    both = {"agents": ["line1", "line2"]}
    async with (
        checked_host(broker.url.port, GROUP),
        _hub(broker, tmp_path / "hub") as (fleet, http),
        agents[0],
        agents[1],
        running_task(agents[0], name=f"test.{agents[0].agent_id}"),
        running_task(agents[1], name=f"test.{agents[1].agent_id}"),
    ):

        def reported(name: str) -> Any:
            return next(a for a in fleet.agents() if a["agent"] == name)["reported"] or {}

        await _login(http, "hana")
        assert (await http.post("/api/fleet/deploy", json={**both, "config": good})).status_code == 201
        await until(lambda: all(reported(n).get("version") == 1 for n in ("line1", "line2")), within_s=15, what="v1")

        stopped = await http.post("/api/fleet/deploy", json={**both, "config": broken, "staged": True})
        assert stopped.status_code == 202, stopped.text
        assert stopped.json()["staged"]["first"] == "line1"
        await until(lambda: fleet.rollouts[0]["state"] == "stopped", within_s=20, what="the rollout stopped")
        assert "line1: version 2 failed: failed to apply" in str(fleet.rollouts[0]["reason"])
        assert [v.version for v in fleet.store.versions("line2")] == [1]  # never deployed to the rest

        went = await http.post("/api/fleet/deploy", json={**both, "config": better, "staged": True})
        assert went.status_code == 202
        await until(lambda: fleet.rollouts[0]["state"] == "done", within_s=20, what="the rollout done")
        await until(lambda: reported("line2").get("version") == 2, within_s=15, what="line2 on the new version")
        assert reported("line1")["version"] == 3
        listed = (await http.get("/api/fleet/agents")).json()
        assert [r["state"] for r in listed["rollouts"]] == ["done", "stopped"]
