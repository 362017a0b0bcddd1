"""Rules in the settings run inside ``uns up``: alarms over HTTP, their history in the hub's historian, health."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import orjson

from hub.app import run_up
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.settings import load_plant, load_settings

_REPO = Path(__file__).resolve().parents[3]


async def test_uns_up_runs_the_rules_of_the_settings(tmp_path: Path) -> None:
    rule = {
        "name": "hot",
        "trigger": {"kind": "value", "topic": "acme/dallas/bottling/line1/filler/data/Temp", "above": 80},
        "actions": [{"kind": "alarm", "path": "${path}", "name": "too-hot", "message": "Temp ${value}"}],
    }
    overrides: dict[str, object] = {
        "broker.config": _REPO / "broker.yaml",
        "broker.mqtt_port": 0,
        "broker.ws_port": 0,
        "web.http_port": 0,
        "data_dir": tmp_path,
        "demo": False,
        "rules": [rule],
    }
    settings = load_settings(config_file=None, overrides=overrides, environ={})
    plant = load_plant(settings.plant)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_up(settings, plant, ready=ready.set_result), name="test.hub-with-rules")
    try:
        async with asyncio.timeout(30):
            line = await ready
        endpoints = dict(part.split("=", 1) for part in line.split() if "=" in part)
        async with network_clients(BrokerUrl.from_str(endpoints["mqtt"]))(client_id="rules-hub-test") as pub:
            await pub.publish("acme/dallas/bottling/line1/filler/data/Temp", orjson.dumps({"value": 95}), qos=1)
        async with httpx.AsyncClient(base_url=endpoints["http"], timeout=5) as client:

            async def alarms() -> list[dict[str, object]]:
                return list((await client.get("/api/alarms")).json()["alarms"])

            found: list[dict[str, object]] = []

            async def poll() -> None:
                while not found:
                    found.extend(await alarms())
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(poll(), 20)
            assert [(a["name"], a["state"], a["message"]) for a in found] == [("too-hot", "active", "Temp 95")]
            health = (await client.get("/api/health")).json()
            assert health["rules"]["per_rule"]["hot"]["fired"] == 1

            rows: list[object] = []

            async def history() -> None:
                while not rows:
                    rows.extend((await client.get("/api/alarms/history")).json()["rows"])
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(history(), 20)
            assert [(r["name"], r["state"]) for r in rows if isinstance(r, dict)] == [("too-hot", "active")]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
