"""Rules in the settings run inside ``uns up``: alarms over HTTP, their history in the hub's historian, health."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson

from tests.fixtures.up import hub_up
from tests.fixtures.waiting import eventually
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl


async def test_uns_up_runs_the_rules_of_the_settings(tmp_path: Path) -> None:
    rule = {
        "name": "hot",
        "trigger": {"kind": "value", "topic": "acme/dallas/bottling/line1/filler/data/Temp", "above": 80},
        "actions": [{"kind": "alarm", "path": "${path}", "name": "too-hot", "message": "Temp ${value}"}],
    }
    async with hub_up(tmp_path, {"rules": [rule]}, name="test.hub-with-rules") as up:
        endpoints = up.endpoints
        async with network_clients(BrokerUrl.from_str(endpoints["mqtt"]))(client_id="rules-hub-test") as pub:
            await pub.publish("acme/dallas/bottling/line1/filler/data/Temp", orjson.dumps({"value": 95}), qos=1)
        async with httpx.AsyncClient(base_url=endpoints["http"], timeout=5) as client:

            async def alarms() -> list[dict[str, object]]:
                return list((await client.get("/api/alarms")).json()["alarms"])

            found = await eventually(alarms, bool, what="the alarm")
            assert [(a["name"], a["state"], a["message"]) for a in found] == [("too-hot", "active", "Temp 95")]
            health = (await client.get("/api/health")).json()
            assert health["rules"]["per_rule"]["hot"]["fired"] == 1

            async def history() -> list[object]:
                return list((await client.get("/api/alarms/history")).json()["rows"])

            rows = await eventually(history, bool, what="the alarm's history", every_s=0.1)
            assert [(r["name"], r["state"]) for r in rows if isinstance(r, dict)] == [("too-hot", "active")]
