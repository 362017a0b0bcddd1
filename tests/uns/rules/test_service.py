"""The rules under ``uns up``: alarm history in DuckDB, the HTTP API, reload with a diff, a refused reload."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest
from starlette.applications import Starlette

from tests.fixtures.recording import recorder_on
from tests.fixtures.running import running_task
from tests.fixtures.timers import timers_by_task
from tests.fixtures.waiting import until
from tests.uns.rules.harness import RULES
from uns.broker.acl import AclPolicy
from uns.broker.embedded import EmbeddedBroker
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.rules.check import RulesRefused
from uns.rules.demo import demo_rules
from uns.rules.history import AlarmHistory
from uns.rules.service import RuleService
from uns.settings import load_plant
from uns.store.database import Database
from uns.web.alarms_api import alarm_routes
from uns.web.roles import classify

PLANT = load_plant(None)
LINE1 = "acme/dallas/bottling/line1"
FILLER = f"{LINE1}/filler"
HOT: list[object] = [
    {
        "name": "hot",
        "trigger": {"kind": "value", "topic": f"{FILLER}/data/Temp", "above": 80},
        "actions": [{"kind": "alarm", "path": "${path}", "name": "too-hot", "priority": 700}],
    }
]


@contextlib.asynccontextmanager
async def _service(broker: EmbeddedBroker, db: Database) -> AsyncIterator[RuleService]:
    thread = concurrent.futures.ThreadPoolExecutor(1)  # one writer thread, as the historian's

    async def writer(work: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        await asyncio.get_running_loop().run_in_executor(thread, work, db.connection)

    service = RuleService(
        rules=RULES.validate_python(HOT),
        plant=PLANT,
        clients=network_clients(broker.url),
        acl=AclPolicy(),
        writer=writer,
        health_interval_s=0.1,
    )
    async with service:
        try:
            async with running_task(service, name="rules-test-service"):
                yield service
        finally:
            thread.shutdown(wait=True)  # once run() stopped, before the service exits


async def _publish(broker: EmbeddedBroker, topic: str, value: float) -> None:
    async with network_clients(broker.url)(client_id="rules-test-publisher") as client:
        await client.publish(topic, orjson.dumps({"value": value}), qos=1)


def _yaml(name: str, topic: str, limit: str, alarm: str) -> str:
    trigger = f"{{kind: value, topic: {topic}, {limit}}}"
    action = f"{{kind: alarm, path: '${{path}}', name: {alarm}}}"
    return f"rules:\n  - name: {name}\n    trigger: {trigger}\n    actions: [{action}]\n"


def _count(db: Database) -> int:
    cursor = db.reader()
    try:
        row = cursor.execute("SELECT count(*) FROM alarm_history").fetchone()
    finally:
        cursor.close()
    return int(row[0]) if row else 0


async def test_alarm_changes_reach_the_history_and_the_api_lists_acks_and_reads_them(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings_file = tmp_path / "hub.yaml"
    with Database(path=tmp_path / "historian.duckdb") as db:
        async with _service(broker, db) as service:
            app = Starlette(routes=alarm_routes(service, AlarmHistory(db), settings_file))
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as http:
                await _publish(broker, f"{FILLER}/data/Temp", 90)
                await until(lambda: service.engine.alarms.listed(), what="the alarm")
                listed = (await http.get("/api/alarms")).json()["alarms"]
                assert [(a["name"], a["state"], a["priority"]) for a in listed] == [("too-hot", "active", 700)]
                refused = await http.post("/api/alarms/ack", json={"path": FILLER})
                assert (refused.status_code, refused.json()["field"]) == (400, "name")
                unknown = await http.post("/api/alarms/ack", json={"path": FILLER, "name": "nope"})
                assert unknown.status_code == 404
                acked = await http.post("/api/alarms/ack", json={"path": FILLER, "name": "too-hot", "comment": "ok"})
                assert (acked.status_code, acked.json()["acked_by"], acked.json()["ack_comment"]) == (
                    200,
                    "anonymous",
                    "ok",
                )
                again = await http.post("/api/alarms/ack", json={"path": FILLER, "name": "too-hot"})
                assert again.status_code == 409
                await _publish(broker, f"{FILLER}/data/Temp", 20)
                await until(lambda: not service.engine.alarms.listed(), what="the clear")
                await until(lambda: _count(db) == 3, what="three history rows")
                rows = (await http.get("/api/alarms/history", params={"path": "acme/dallas"})).json()["rows"]
                assert [(r["state"], r["acknowledged"], r["acked_by"], r["value"]) for r in rows] == [
                    ("normal", True, "anonymous", 90),
                    ("active", True, "anonymous", 90),
                    ("active", False, None, 90),
                ]
                assert rows[0]["cleared_ms"] >= rows[0]["raised_ms"] > 0
                assert (await http.get("/api/alarms/history", params={"path": "acme/austin"})).json()["rows"] == []

                # reload from the settings file: a bad set is refused naming the rule and field; the running set stays
                settings_file.write_text(_yaml("hot", f"{LINE1}/filer/data/Temp", "above: 80", "too-hot"))
                bad = await http.post("/api/rules/reload")
                assert bad.status_code == 422
                assert bad.json()["problems"][0].startswith(
                    f"settings: rules.hot.trigger.topic: no equipment of the plant file at '{LINE1}/filer'"
                )
                assert service.reload_failures == 1
                settings_file.write_text("rules:\n  - {name: hot, trigger: {kind: value}, actions: []}\n")
                typo = await http.post("/api/rules/reload")
                assert typo.status_code == 422
                assert any("rules[0].trigger.value.topic" in p for p in typo.json()["problems"])
                settings_file.write_text(_yaml("cold", f"{FILLER}/data/Temp", "below: 5", "too-cold"))
                preview = await http.post("/api/rules/reload", params={"dry_run": "1"})
                assert preview.json() == {"changes": ["+ cold", "- hot"], "applied": False}
                assert [r.name for r in service.engine.rules] == ["hot"]
                good = await http.post("/api/rules/reload")
                assert good.json() == {"changes": ["+ cold", "- hot"], "applied": True}
                await _publish(broker, f"{FILLER}/data/Temp", 1)
                await until(lambda: service.engine.alarms.listed(), what="the new rule's alarm")
                assert service.engine.alarms.listed()[0].name == "too-cold"
                rules = (await http.get("/api/rules")).json()
                assert [r["name"] for r in rules["rules"]] == ["cold"]
                assert (rules["reloads"], rules["reload_failures"]) == (1, 2)
                async with recorder_on(broker.url, ["acme/hub/rules/health"]) as seen:  # retained, then every 0.1 s
                    await until(lambda: len(seen.messages) >= 2, what="the rules' health")
                health = seen.bodies("acme/hub/rules/health")[-1]
                assert isinstance(health, dict)
                assert (health["online"], health["rules"], health["alarms"], health["reloads"]) == (True, 1, 1, 1)


def test_the_demo_rules_pass_the_check_and_operators_may_acknowledge() -> None:
    rules = demo_rules(PLANT)
    assert [r.name for r in rules] == ["machine-faulted", "order-completed-webhook"]
    assert classify("POST", "/api/alarms/ack") == "mes-event"  # app (operators), host, admin
    assert classify("POST", "/api/rules/reload") == "write"  # host, admin


def test_a_bad_rule_set_refuses_the_start() -> None:
    with pytest.raises(RulesRefused, match=r"rules\.hot\.actions"):
        RuleService(
            rules=RULES.validate_python(
                [
                    {
                        "name": "hot",
                        "trigger": {"kind": "topic", "filter": "#"},
                        "actions": [{"kind": "alarm", "path": "acme/x", "name": "a"}],
                    }
                ]
            ),
            plant=PLANT,
            clients=network_clients(BrokerUrl()),
            acl=AclPolicy(),
        )


async def test_the_alarm_history_writer_sleeps_until_an_alarm_changes(broker: EmbeddedBroker, tmp_path: Path) -> None:
    with Database(path=tmp_path / "historian.duckdb") as db:
        async with _service(broker, db) as service:
            with timers_by_task() as timers:
                await asyncio.sleep(1.2)
            assert timers["uns.rules.history"] == 0, timers  # was 2 a second: a 0.5 s flush loop
            await _publish(broker, f"{FILLER}/data/Temp", 90)
            await until(lambda: service.engine.alarms.listed(), what="the alarm")
            await until(lambda: _count(db) == 1, what="its history row")
