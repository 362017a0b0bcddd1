"""The live editor's API against `uns up` in-process: list, edit into the settings file, reload, test, replay, roles."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.web_rig import accounts
from tests.exports import assert_all_is_honest
from tests.fixtures.up import hub_up
from tests.fixtures.waiting import eventually
from uns.clock import now_ms
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl

FILLER = "acme/dallas/bottling/line1/filler"
TEMP = f"{FILLER}/data/Temp"
SETTINGS = f"""# the test hub's settings: the editor keeps this comment
transforms:
  # the filler's temperature in degF
  - name: Computed/TempF
    path: {FILLER}
    expression: t * 9 / 5 + 32
    inputs: {{t: {TEMP}}}
    unit: degF
rules:
  - name: too-hot   # keep me
    trigger: {{kind: value, topic: {TEMP}, above: 80, hysteresis: 5}}
    actions:
      - {{kind: alarm, path: "${{path}}", name: too-hot, priority: 900}}
historian:
  flush_interval_s: 0.2
"""
TEMP_K = f"""name: Computed/TempK
# a comment inside the item stays too
path: {FILLER}
expression: round(t + 273.15, 2)
inputs:
  t: {TEMP}
unit: K
"""


@contextlib.asynccontextmanager
async def _hub(
    tmp_path: Path, broker_config: Path | None = None, text: str = SETTINGS, **more: object
) -> AsyncIterator[dict[str, str]]:
    config = tmp_path / "hub.yaml"
    config.write_text(text)
    async with hub_up(tmp_path, more, config_file=config, broker_config=broker_config, name="test.editor-hub") as up:
        yield up.endpoints


async def _publish(mqtt: str, *messages: tuple[str, Mapping[str, object]]) -> None:
    url = BrokerUrl.from_str(mqtt)
    async with network_clients(url)(client_id=f"editor-test-{time.monotonic_ns()}") as client:
        for topic, body in messages:
            await client.publish(topic, orjson.dumps(body), qos=1)


def _tag(listing: dict[str, Any], topic: str) -> dict[str, Any] | None:
    return next((t for t in listing["transforms"] if t["topic"] == topic), None)


def _rule(listing: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in listing["rules"] if r["name"] == name)


async def test_list_create_refuse_test_and_disable(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    async with _hub(tmp_path) as hub, httpx.AsyncClient(base_url=hub["http"], timeout=10) as client:

        async def listing() -> dict[str, Any]:
            return dict((await client.get("/api/automation")).json())

        await _publish(hub["mqtt"], (TEMP, {"value": 20, "timestamp_ms": now_ms()}))
        found = await eventually(
            listing, lambda b: (_tag(b, f"{FILLER}/data/Computed/TempF") or {})["value"], what="TempF"
        )
        tag = _tag(found, f"{FILLER}/data/Computed/TempF")
        assert tag is not None
        assert (tag["value"], tag["quality"], tag["in_file"], tag["enabled"]) == (68.0, "good", True, True)
        assert tag["timestamp_ms"] > 0
        assert tag["status"]["evaluations"] >= 1
        assert tag["yaml"].startswith("name: Computed/TempF\npath: ")
        assert found["editable"] is True
        assert found["file"] == str(config)
        rule = _rule(found, "too-hot")
        assert (rule["trigger"], rule["actions"], rule["stats"]["fired"]) == ("value", ["alarm"], 0)
        assert rule["yaml"].startswith("name: too-hot   # keep me\n")

        # a new tag: checked, written into the file beside the comments, reloaded, publishing
        saved = await client.post("/api/automation/save", json={"kind": "transforms", "key": None, "yaml": TEMP_K})
        assert saved.status_code == 200, saved.text
        assert saved.json()["changes"] == [f"+ {FILLER}/data/Computed/TempK"]
        text = config.read_text()
        assert "# the test hub's settings: the editor keeps this comment" in text
        assert "  # the filler's temperature in degF\n" in text
        assert "    # a comment inside the item stays too\n" in text
        assert text.endswith("historian:\n  flush_interval_s: 0.2\n")
        found = await eventually(
            listing, lambda b: (_tag(b, f"{FILLER}/data/Computed/TempK") or {})["value"], what="TempK"
        )
        assert _tag(found, f"{FILLER}/data/Computed/TempK")["value"] == 293.15  # type: ignore[index]

        # refused: every problem, by field and line; the file and the running tags stay
        before = config.read_text()
        bad = TEMP_K.replace("round(t + 273.15, 2)", "t +").replace("unit: K", "unit: kelvinz\nevery: soon")
        refused = await client.post("/api/automation/save", json={"kind": "transforms", "key": None, "yaml": bad})
        assert refused.status_code == 422
        problems = refused.json()["problems"]
        assert [(p["field"], p["line"]) for p in problems] == [("every", 8)]
        assert "should match pattern" in problems[0]["message"]
        bad = TEMP_K.replace("round(t + 273.15, 2)", "t +").replace("Computed/TempK", "Computed/TempX")
        refused = await client.post("/api/automation/save", json={"kind": "transforms", "key": None, "yaml": bad})
        assert refused.status_code == 422
        [problem] = refused.json()["problems"]
        assert (problem["field"], problem["line"]) == ("expression", 4)
        assert "column" in problem["message"]
        unknown = TEMP_K.replace(f"  t: {TEMP}", "  t: acme/dallas/bottling/line1/filer/data/Temp")
        refused = await client.post(
            "/api/automation/save", json={"kind": "transforms", "key": f"{FILLER}/data/Computed/TempK", "yaml": unknown}
        )
        assert refused.status_code == 422
        [problem] = refused.json()["problems"]
        assert (problem["field"], problem["line"]) == ("inputs.t.topic", 6)
        assert "no equipment 'acme/dallas/bottling/line1/filer'" in problem["message"]
        bad_rule = (
            "name: cold\ntrigger: {kind: value, topic: acme/nowhere/data/x}\n"
            'actions: [{kind: alarm, path: "${path}", name: cold}]\ncondition: value.x\n'
        )
        refused = await client.post("/api/automation/save", json={"kind": "rules", "key": None, "yaml": bad_rule})
        assert [(p["field"], p["line"]) for p in refused.json()["problems"]] == [("trigger.value", 2)]
        bad_rule = bad_rule.replace("topic: acme/nowhere/data/x", "topic: acme/nowhere/data/x, below: 3")
        refused = await client.post("/api/automation/save", json={"kind": "rules", "key": None, "yaml": bad_rule})
        assert [(p["field"], p["line"]) for p in refused.json()["problems"]] == [
            ("trigger.topic", 2),
            ("condition", 4),
        ]
        assert config.read_text() == before

        # the test button: the tag on the current values, the rule on the topic's current value
        tested = await client.post("/api/automation/test", json={"kind": "transforms", "yaml": TEMP_K})
        assert tested.json()["points"][-1][1:] == [293.15, "good"]
        tested = await client.post(
            "/api/automation/test", json={"kind": "rules", "yaml": _rule(found, "too-hot")["yaml"]}
        )
        assert (tested.json()["topics"], tested.json()["fired"]) == (1, 0)  # 20 is not above 80

        # disabled: written as enabled: false (its comment kept), a hot reading raises nothing
        off = await client.post("/api/automation/enable", json={"kind": "rules", "key": "too-hot", "enabled": False})
        assert off.status_code == 200, off.text
        assert off.json()["changes"] == ["~ too-hot"]
        assert "  - name: too-hot   # keep me\n" in config.read_text()
        assert "    enabled: false\n" in config.read_text()
        await _publish(hub["mqtt"], (TEMP, {"value": 95, "timestamp_ms": now_ms()}))
        found = await eventually(
            listing,
            lambda b: _tag(b, f"{FILLER}/data/Computed/TempF")["value"] == 203.0,  # type: ignore[index]
            what="95",
        )
        rule = _rule(found, "too-hot")
        assert (rule["enabled"], rule["stats"]["fired"]) == (False, 0)
        assert (await client.get("/api/alarms")).json()["alarms"] == []
        on = await client.post("/api/automation/enable", json={"kind": "rules", "key": "too-hot", "enabled": True})
        assert on.status_code == 200
        await _publish(hub["mqtt"], (TEMP, {"value": 96, "timestamp_ms": now_ms()}))
        await eventually(listing, lambda b: _rule(b, "too-hot")["stats"]["fired"] == 1, what="the rule firing again")

        # deleted from the file and from what runs
        gone = await client.post(
            "/api/automation/delete", json={"kind": "transforms", "key": f"{FILLER}/data/Computed/TempK"}
        )
        assert gone.json()["changes"] == [f"- {FILLER}/data/Computed/TempK"]
        assert "TempK" not in config.read_text()
        assert _tag(await listing(), f"{FILLER}/data/Computed/TempK") is None


async def test_rules_the_file_lacks_are_written_into_it_with_the_change(tmp_path: Path) -> None:
    # as with the demo's rules: they run, the file has no rules: of its own; a change keeps the others running
    alarm = {"kind": "alarm", "path": FILLER, "name": "x"}
    rules = [
        {"name": "a", "trigger": {"kind": "value", "topic": TEMP, "above": 1}, "actions": [alarm]},
        {"name": "b", "trigger": {"kind": "value", "topic": TEMP, "below": 0}, "actions": [alarm]},
    ]
    text = "# no rules: here\nhistorian:\n  flush_interval_s: 0.2\n"
    async with _hub(tmp_path, text=text, rules=rules) as hub, httpx.AsyncClient(base_url=hub["http"]) as client:
        listed = (await client.get("/api/automation")).json()
        assert [(r["name"], r["in_file"]) for r in listed["rules"]] == [("a", False), ("b", False)]
        off = await client.post("/api/automation/enable", json={"kind": "rules", "key": "b", "enabled": False})
        assert off.json()["changes"] == ["~ b"]
        written = (tmp_path / "hub.yaml").read_text()
        assert written.startswith(text)
        assert written[len(text) :].startswith("rules:\n- name: a\n")
        listed = (await client.get("/api/automation")).json()
        shown = [(r["name"], r["enabled"], r["in_file"]) for r in listed["rules"]]
        assert shown == [("a", True, True), ("b", False, True)]


async def test_replay_counts_the_fires_over_the_historians_samples(tmp_path: Path) -> None:
    async with _hub(tmp_path) as hub, httpx.AsyncClient(base_url=hub["http"], timeout=10) as client:
        start = now_ms() - 50 * 60_000
        readings = [70, 90, 86, 70, 91, 60, 95, 74]  # above 80 three times; 86 is within the hysteresis
        stamps = [start + i * 60_000 for i in range(len(readings))]
        await _publish(
            hub["mqtt"], *[(TEMP, {"value": v, "timestamp_ms": t}) for v, t in zip(readings, stamps, strict=True)]
        )

        async def stored() -> int:
            answer = await client.get("/api/history/raw", params={"topic": TEMP, "start": "-1h", "end": "now"})
            return len(answer.json().get("rows", [])) if answer.status_code == 200 else 0

        await eventually(stored, lambda n: n == len(readings), what="the samples in the historian")
        rule = _rule((await client.get("/api/automation")).json(), "too-hot")["yaml"]
        replay = await client.post("/api/automation/replay", json={"kind": "rules", "yaml": rule, "hours": 1})
        assert replay.status_code == 200, replay.text
        body = replay.json()
        assert (body["messages"], body["fired"], body["cleared"], body["cut"]) == (8, 3, 3, False)
        fires = [f for f in body["firings"] if f["phase"] == "fire"]
        assert [(f["at_ms"], f["value"]) for f in fires] == [(stamps[1], 90), (stamps[4], 91), (stamps[6], 95)]
        # a minimum duration counts from the samples' own time: 90 held 2 minutes, 91 and 95 only 1
        held = rule.replace("hysteresis: 5", "hysteresis: 5, for_s: 90")
        body = (await client.post("/api/automation/replay", json={"kind": "rules", "yaml": held, "hours": 1})).json()
        assert [(f["at_ms"], f["value"]) for f in body["firings"] if f["phase"] == "fire"] == [(stamps[1] + 90_000, 90)]
        # a condition skips, the count says so
        cond = rule.replace("actions:", "condition: value > 92\nactions:")
        body = (await client.post("/api/automation/replay", json={"kind": "rules", "yaml": cond, "hours": 1})).json()
        assert (body["fired"], body["skipped"]) == (1, 2)
        # a computed tag over the same hour: one result per sample, in degF
        tag = (await client.get("/api/automation")).json()["transforms"][0]["yaml"]
        body = (
            await client.post("/api/automation/replay", json={"kind": "transforms", "yaml": tag, "hours": 1})
        ).json()
        assert (body["messages"], body["results"], body["minimum"], body["maximum"]) == (8, 8, 140.0, 203.0)
        assert [p[0] for p in body["points"]] == stamps
        bad = await client.post("/api/automation/replay", json={"kind": "rules", "yaml": rule, "hours": 1000})
        assert (bad.status_code, bad.json()["error"]) == (400, "hours: a number above 0, at most 168 (got 1000)")


async def test_a_viewer_reads_but_may_not_change_test_or_replay(tmp_path: Path) -> None:
    async with _hub(tmp_path, accounts(tmp_path)) as hub:
        async with httpx.AsyncClient(base_url=hub["http"], timeout=10) as vera:
            login = await vera.post("/api/login", json={"username": "vera", "password": "vera-secret"})
            assert login.status_code == 200
            listed = await vera.get("/api/automation")
            assert listed.status_code == 200
            assert "script-src 'self'" in listed.headers["content-security-policy"]  # as every page and API
            page = await vera.get("/static/automation.js")
            assert page.headers["x-frame-options"] == "DENY"
            rule = _rule(listed.json(), "too-hot")["yaml"]
            for path, body in [
                ("/api/automation/save", {"kind": "rules", "key": "too-hot", "yaml": rule}),
                ("/api/automation/enable", {"kind": "rules", "key": "too-hot", "enabled": False}),
                ("/api/automation/delete", {"kind": "rules", "key": "too-hot"}),
                ("/api/automation/test", {"kind": "rules", "yaml": rule}),
                ("/api/automation/replay", {"kind": "rules", "yaml": rule}),
            ]:
                refused = await vera.post(path, json=body)
                assert refused.status_code == 403, path
            assert (tmp_path / "hub.yaml").read_text() == SETTINGS
        async with httpx.AsyncClient(base_url=hub["http"], timeout=10) as hana:
            await hana.post("/api/login", json={"username": "hana", "password": "hana-secret"})
            off = await hana.post("/api/automation/enable", json={"kind": "rules", "key": "too-hot", "enabled": False})
            assert off.status_code == 200, off.text


@pytest.mark.parametrize(
    "module",
    [
        "uns.rules.cli",
        "uns.rules.replay",
        "uns.transforms.replay",
        "uns.web.automation_api",
        "uns.web.automation_file",
        "uns.web.automation_sources",
    ],
)
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module)
