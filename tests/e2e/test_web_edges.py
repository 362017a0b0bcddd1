"""The Edges page in headless Chromium against `uns up` and a real `uns edge` agent process.

Deploy and roll back from the page, each after its diff; a broken version rolled back by the agent and
shown with its reason; a viewer sees no button and the API refuses her; and `uns up --hand-off` moving
a demo bridge onto an agent started beside the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.async_api import Browser, Page, expect

from tests.e2e.web_rig import PORTS, accounts, hub_endpoints, open_page, skip_without_chromium
from tests.fixtures.processes import stop_process
from tests.fixtures.waiting import eventually
from uns.broker import hash_password
from uns.web.headers import CONTENT_SECURITY_POLICY

# two processes starting on a loaded 2-core box (the whole demo in one), a few agent round trips each
pytestmark = [
    skip_without_chromium,
    pytest.mark.timeout(240),
    pytest.mark.asyncio(loop_scope="module"),  # for module_browser
]

SOURCE = "acme/edgetest/mixer"


def _broker_yaml(tmp_path: Path) -> Path:
    """The rig's users (vera viewer, otto app, hana host) and line1's agent account (role bridge)."""
    path = accounts(tmp_path)
    agent = (
        f'  line1-agent: {{password_hash: "{hash_password("agent-secret")}", role: bridge, '
        'edge_nodes: ["edges/+"], edge_agent: line1}\n'
    )
    path.write_text(path.read_text().replace("users:\n", "users:\n" + agent, 1))
    return path


def _bridge(mqtt: str, *, unit: str, **edge: object) -> str:
    """line1's config as YAML: an MQTT-JSON bridge reading SOURCE as otto (the agent's account reads no plant topic)."""
    source = mqtt.replace("mqtt://", "mqtt://otto:otto-secret@")
    bridge = {
        "kind": "mqtt_json",
        "name": "press-line1",
        "source_broker": source,
        "edge": {"group": "edges", "primary_host_id": "uns-hub", "first_reading_wait_s": 0.1, **edge},
        "devices": [
            {"id": "mixer", "mappings": [{"topic": SOURCE, "path": "$.t", "name": "Temperature", "unit": unit}]}
        ],
    }
    text: str = yaml.safe_dump({"bridges": [bridge]}, sort_keys=False)
    return text


def _start_edge(agent: str, broker: str, data_dir: Path, log_path: Path) -> subprocess.Popen[str]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "edge", "--id", agent, "--broker", broker, "--data-dir", str(data_dir),
             "--status-interval", "0.5", "--birth-wait", "5"],
            stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "UNS_LOG_LEVEL": "INFO"},
        )  # fmt: skip


@contextlib.asynccontextmanager
async def _edge_agent(agent: str, broker: str, data_dir: Path, log_path: Path) -> AsyncIterator[None]:
    """`uns edge --id AGENT` as a process until the block ends."""
    proc = _start_edge(agent, broker, data_dir, log_path)
    try:
        assert proc.stdout is not None
        ready = await asyncio.to_thread(proc.stdout.readline)
        assert ready.startswith(f"uns-edge ready: agent={agent} "), await asyncio.to_thread(log_path.read_text)
        yield
    finally:
        await asyncio.to_thread(stop_process, proc, 20)
        if proc.stdout is not None:
            proc.stdout.close()


async def _sign_in(page: Page, url: str, user: str) -> None:
    await page.goto(f"{url}/login?next=%2F%23edges")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", f"{user}-secret")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who")).to_contain_text(user, timeout=10_000)


async def _review_and_confirm(page: Page, *, shows: list[str]) -> None:
    """The diff is shown first; only the confirm button sends it."""
    confirm = page.locator("#edge-confirm")
    await expect(confirm).to_be_visible()
    for line in shows:
        await expect(page.locator("#edge-diffs")).to_contain_text(line)
    await page.locator("#edge-confirm-go").click()
    await expect(confirm).to_be_hidden()


async def test_deploy_a_failed_version_and_a_rollback_from_the_edges_page(
    tmp_path: Path, module_browser: Browser
) -> None:
    args = ["up", "--no-demo", *PORTS, "--broker-config", str(_broker_yaml(tmp_path)), "--data-dir", str(tmp_path)]
    with hub_endpoints(args, tmp_path / "hub.log") as hub:
        url, mqtt = hub["http"], hub["mqtt"]
        page, errors = await open_page(module_browser, f"{url}/login")
        await _sign_in(page, url, "hana")
        first = await page.request.post(
            f"{url}/api/fleet/deploy", data={"agents": ["line1"], "config_yaml": _bridge(mqtt, unit="degC")}
        )
        assert first.status == 201, await first.text()
        agent_url = mqtt.replace("mqtt://", "mqtt://line1-agent:agent-secret@")
        async with _edge_agent("line1", agent_url, tmp_path / "agent", tmp_path / "agent.log"):
            row = page.locator('#edge-list tr[data-agent="line1"]')
            await expect(row.locator(".state")).to_have_text("online, running", timeout=30_000)
            await expect(row.locator(".reported")).to_have_text("v1")
            await expect(row.locator(".bridges")).to_have_text("1/1 online", timeout=15_000)

            # v2 from the page: the diff first, then it runs
            await page.select_option("#edge-deploy select[name=to]", "line1")
            await page.fill("#edge-deploy textarea[name=config]", _bridge(mqtt, unit="degF"))
            await page.fill("#edge-deploy input[name=note]", "Fahrenheit")
            await page.get_by_role("button", name="Review the diff").click()
            await _review_and_confirm(page, shows=["-      unit: degC", "+      unit: degF"])
            await expect(row.locator(".reported")).to_have_text("v2", timeout=30_000)
            await expect(row.locator(".desired")).to_have_text("v2 by hana")

            # a broken v3 (its buffer dir is a file) is valid here but fails on the agent: rolled back, with why
            blocker = tmp_path / "not-a-dir"
            blocker.write_text("x")
            broken = _bridge(mqtt, unit="degF", buffer_dir=str(blocker))
            await page.fill("#edge-deploy textarea[name=config]", broken)
            await page.get_by_role("button", name="Review the diff").click()
            await _review_and_confirm(page, shows=[f"+    buffer_dir: {blocker}"])
            await expect(row.locator(".state")).to_have_text("online, failed", timeout=30_000)
            await expect(row.locator(".reason")).to_contain_text("rolled back to version 2")
            await expect(row.locator(".reported")).to_contain_text("v2")
            await expect(row.locator(".problems")).to_contain_text("version 3: failed to apply")

            # roll back to v1 from its versions: the diff first, then v4 carries v1's content and runs
            await row.locator("a.versions").click()
            await page.locator('#edge-versions tr[data-version="1"] button.rollback').click()
            await _review_and_confirm(page, shows=["+      unit: degC", "-      unit: degF"])
            await expect(row.locator(".reported")).to_have_text("v4", timeout=30_000)
            await expect(row.locator(".state")).to_have_text("online, running")
            listed: Any = await (await page.request.get(f"{url}/api/fleet/agents")).json()
            line1 = next(a for a in listed["agents"] if a["agent"] == "line1")
            assert line1["bridges"][0]["node"] == "press-line1"
            assert line1["desired"]["note"] == "rollback to 1"

            # enrol an agent from the page: its one-time token is shown once; revoke it after a confirm
            await page.fill("#edge-enrol input[name=agent]", "line9")
            await page.fill("#edge-enrol input[name=labels]", "site=dallas")
            await page.get_by_role("button", name="Enrol").click()
            await expect(page.locator("#edge-result code.token")).to_have_text(re.compile(r"^[\w-]{30,}$"))
            line9 = page.locator('#edge-list tr[data-agent="line9"]')
            await expect(line9.locator(".agent")).to_have_text("line9 (pending)")
            await line9.locator("button.revoke").click()
            await expect(page.locator("#edge-confirm-title")).to_contain_text("Revoke line9")
            await page.locator("#edge-confirm-go").click()
            await expect(line9.locator(".agent")).to_have_text("line9 (revoked)")

            # a viewer sees the agent but no button, and the API refuses her a deploy
            viewer, viewer_errors = await open_page(module_browser, f"{url}/login")
            await _sign_in(viewer, url, "vera")
            await expect(viewer.locator('#edge-list tr[data-agent="line1"] .reported')).to_have_text("v4")
            await viewer.locator('#edge-list tr[data-agent="line1"] a.versions').click()
            await expect(viewer.locator('#edge-versions tr[data-version="1"]')).to_be_visible()
            await expect(viewer.locator("#edges button:visible")).to_have_count(0)
            await expect(viewer.locator("#edge-deploy")).to_be_hidden()
            refused = await viewer.request.post(
                f"{url}/api/fleet/rollback", data={"agent": "line1", "to": 2}, fail_on_status_code=False
            )
            assert refused.status == 403
        page_headers = (await page.request.get(f"{url}/static/edges.html")).headers
        assert page_headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert page_headers["x-frame-options"] == "DENY"
        assert errors == []
        assert viewer_errors == []


async def test_uns_up_hands_a_demo_bridge_to_an_edge_agent_started_beside_it(
    tmp_path: Path, module_browser: Browser
) -> None:
    args = ["up", *PORTS, "--data-dir", str(tmp_path / "hub"), "--hand-off", "fins-utilities=utilities"]
    with hub_endpoints(args, tmp_path / "hub.log") as hub:
        assert hub["edge"] == "fins-utilities->utilities"
        url = hub["http"]
        async with _edge_agent("utilities", hub["mqtt"], tmp_path / "agent", tmp_path / "agent.log"):
            page, errors = await open_page(module_browser, f"{url}/#edges")
            row = page.locator('#edge-list tr[data-agent="utilities"]')
            await expect(row.locator(".state")).to_have_text("online, running", timeout=60_000)
            await expect(row.locator(".reported")).to_have_text("v1")
            await expect(row.locator(".bridges")).to_have_text("1/1 online", timeout=30_000)

            async def reads() -> Any:
                listed: Any = await (await page.request.get(f"{url}/api/fleet/agents")).json()
                return next(a for a in listed["agents"] if a["agent"] == "utilities")

            utilities = await eventually(
                reads,
                lambda agent: agent["bridges"] and agent["bridges"][0]["samples"] > 0,
                within_s=60,
                what="the agent's FINS bridge reading the demo's simulated PLC",
                every_s=0.1,
            )
            assert utilities["bridges"][0]["node"] == "fins-utilities"
            assert utilities["bridges"][0]["samples"] > 0
            assert utilities["desired"]["note"] == "handed off by uns up: fins-utilities"

            # a deploy, a failed deploy and a rollback on the handed-off bridge (the anonymous demo admin deploys)
            v1: Any = await (await page.request.get(f"{url}/api/fleet/agents/utilities/versions/1")).json()
            (bridge,) = v1["config"]["bridges"]
            slower = {**bridge, "edge": {**bridge["edge"], "health_interval_s": 7}}
            await _api_deploy(page, url, {"agents": ["utilities"], "config": {"bridges": [slower]}})
            await expect(row.locator(".reported")).to_have_text("v2", timeout=30_000)
            blocker = tmp_path / "not-a-dir"
            blocker.write_text("x")
            broken = {**slower, "edge": {**slower["edge"], "buffer_dir": str(blocker)}}
            await _api_deploy(page, url, {"agents": ["utilities"], "config": {"bridges": [broken]}})
            await expect(row.locator(".reason")).to_contain_text("rolled back to version 2", timeout=30_000)
            await expect(row.locator(".state")).to_have_text("online, failed")
            back = await page.request.post(f"{url}/api/fleet/rollback", data={"agent": "utilities", "to": 1})
            assert back.status == 201, await back.text()
            await expect(row.locator(".reported")).to_have_text("v4", timeout=30_000)
            await expect(row.locator(".state")).to_have_text("online, running")
            await expect(row.locator(".bridges")).to_have_text("1/1 online", timeout=30_000)
            assert errors == []


async def _api_deploy(page: Page, url: str, body: dict[str, object]) -> None:
    answer = await page.request.post(f"{url}/api/fleet/deploy", data=body)
    assert answer.status == 201, await answer.text()
