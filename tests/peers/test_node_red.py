"""The example Node-RED flows (examples/node-red) in npm node-red 4.1 against a running hub: values and MES events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.peers.hub_rig import PeerHub, running_peer_hub
from tests.peers.node_red import EXAMPLES, NodeRed, example_flows, running_node_red
from uns.mqtt import MqttClient
from uns.mqtt.types import BrokerUrl

# checked before the hub starts: without node a fresh machine skips at once, naming the install
pytestmark = [pytest.mark.requires("node", "peer-packages"), pytest.mark.asyncio(loop_scope="module")]

LINE = "acme/dallas/bottling/line1"
FILLER = f"{LINE}/filler"
ACCOUNTS = {"nodered": ("red-app-secret", "app"), "nodered-data": ("red-data-secret", "host")}
# the mqtt-broker config node of each example flow
READ_BROKER, PUBLISH_BROKER, MES_BROKER = "a0f1c2d3e4b5a602", "b0f1c2d3e4b5a602", "c0f1c2d3e4b5a602"


@dataclass(frozen=True)
class Rig:
    """The hub and the Node-RED running the example flows against it."""

    hub: PeerHub
    red: NodeRed


def _accounts(work: Path) -> Path:
    """broker.yaml with Node-RED's two accounts (the test's own clients stay anonymous, loopback admin)."""
    from uns.broker import hash_password  # the same hashes `uns passwd` prints

    text = (EXAMPLES.parents[1] / "broker.yaml").read_text()
    users = "".join(
        f'  {user}: {{password_hash: "{hash_password(password)}", role: {role}}}\n'
        for user, (password, role) in ACCOUNTS.items()
    )
    path = work / "broker.yaml"
    path.write_text(text.replace("users: {}\n", f"users:\n{users}"))
    return path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    """One hub and one Node-RED for the module (Node-RED takes ~20 s to start on a loaded box)."""
    work = tmp_path_factory.mktemp("node-red")
    # each example's broker node signs in as the account its job needs: reading and MES events as app,
    # publishing data as host (the app role may not publish data, docs/security.md)
    app, data = ({"user": user, "password": ACCOUNTS[user][0]} for user in ("nodered", "nodered-data"))
    credentials = {READ_BROKER: app, PUBLISH_BROKER: data, MES_BROKER: app}
    async with running_peer_hub(work / "hub", broker_config=_accounts(work)) as hub:
        mqtt = BrokerUrl.from_str(hub.mqtt)
        env = {
            "UNS_MQTT_HOST": mqtt.host,
            "UNS_MQTT_PORT": str(mqtt.port),
            "UNS_HTTP_URL": hub.http,
            "UNS_LINE": LINE,
            "UNS_TEMP_LIMIT": "80",
            "UNS_HTTP_USER": "nodered",
            "UNS_HTTP_PASSWORD": ACCOUNTS["nodered"][0],
        }
        async with running_node_red(example_flows(), env, work, credentials=credentials) as red:
            yield Rig(hub, red)


async def _get(url: str, **params: str) -> object:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _post(url: str, body: object) -> tuple[int, object]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(url, json=body)
    return response.status_code, response.json()


def _ms(iso: object) -> int:
    return round(datetime.fromisoformat(str(iso)).timestamp() * 1000)


def _envelope(value: float, quality: str = "good") -> bytes:
    return json.dumps(
        {"value": value, "timestamp_ms": time.time_ns() // 1_000_000, "quality": quality, "unit": "degC"}
    ).encode()


async def test_read_flow_derives_threshold_crossings_from_good_envelopes(rig: Rig) -> None:
    alerts_url = f"{rig.red.url}/uns/alerts"

    async def crossings() -> list[dict[str, object]]:
        found = await _get(alerts_url)
        assert isinstance(found, list)
        return found

    async with MqttClient(url=BrokerUrl.from_str(rig.hub.mqtt), client_id="node-red-probe") as ours:
        # a retained value reaches Node-RED whenever its subscription is made: then it is listening
        await ours.publish(f"{LINE}/capper/data/Temperature", _envelope(95.0), qos=1, retain=True)
        deadline = time.monotonic() + 20
        while not (alerts := await crossings()):
            assert time.monotonic() < deadline, f"no crossing from the retained value: {rig.red.log_tail()}"
            await asyncio.sleep(0.1)
        assert [(a["topic"], a["state"], a["value"], a["unit"], a["limit"]) for a in alerts] == [
            (f"{LINE}/capper/data/Temperature", "high", 95.0, "degC", 80)
        ]
        sequence = ((70.0, "good"), (85.5, "good"), (81.0, "good"), (75.0, "good"), (99.0, "stale"), (78.0, "good"))
        for value, quality in sequence:
            await ours.publish(f"{FILLER}/data/Temperature", _envelope(value, quality), qos=1, retain=True)
        # then the capper back to normal: one client's messages arrive in order, so once Node-RED
        # reports that crossing it has judged every filler value before it
        await ours.publish(f"{LINE}/capper/data/Temperature", _envelope(60.0), qos=1, retain=True)
        deadline = time.monotonic() + 10
        while (alerts := await crossings())[-1]["value"] != 60.0:
            assert time.monotonic() < deadline, f"crossings: {alerts}"
            await asyncio.sleep(0.1)
    # 70 is normal from the start (no crossing), 85.5 crosses up, 81 stays high, 75 crosses down, the
    # stale 99 is not judged (else it and 78 would cross): each crossing with the envelope's value and unit
    filler = [(a["state"], a["value"], a["unit"]) for a in alerts if a["topic"] == f"{FILLER}/data/Temperature"]
    assert filler == [("high", 85.5, "degC"), ("normal", 75.0, "degC")]
    assert all(isinstance(a["timestamp_ms"], int) for a in alerts), alerts


async def test_publish_flow_envelopes_are_stored_with_their_time_and_quality(rig: Rig) -> None:
    # the inject node's value (every 5 s: one sent before the broker node connected is dropped by
    # Node-RED): a good Double envelope, stamped by Node-RED
    tank = f"{FILLER}/data/NodeRed/TankLevel"
    rows = await rig.hub.wait_last(tank, lambda rows: len(rows) == 1, what="the inject node's envelope", within_s=20)
    assert [(r["value"], r["quality"], r["datatype"], r["unit"]) for r in rows] == [(42.5, "good", "Double", "L")]
    # a value posted to the flow with its own quality and time: stored as given
    brix = f"{FILLER}/data/NodeRed/LabBrix"
    at = time.time_ns() // 1_000_000 - 60_000
    status, answer = await _post(
        f"{rig.red.url}/uns/value", {"topic": brix, "value": 11.25, "quality": "uncertain", "timestamp_ms": at}
    )
    assert status == 202, answer
    rows = await rig.hub.wait_last(brix, lambda rows: len(rows) == 1, what="the posted envelope", within_s=10)
    assert [(r["value"], r["quality"], _ms(r["ts"])) for r in rows] == [(11.25, "uncertain", at)]
    # bad input is refused naming the field, and nothing is published
    for body, field in (
        ({"topic": brix, "value": 1.0, "quality": "great"}, "quality"),
        ({"topic": f"{FILLER}/mes/production_count", "value": 1.0}, "topic"),
        ({"topic": brix, "value": None}, "value"),
    ):
        status, answer = await _post(f"{rig.red.url}/uns/value", body)
        assert (status, answer["field"] if isinstance(answer, dict) else answer) == (400, field), answer


async def test_mes_flow_posts_counts_over_mqtt_and_downtime_reasons_over_http(rig: Rig) -> None:
    now = time.time_ns() // 1_000_000
    t0 = now - 600_000
    async with httpx.AsyncClient(base_url=rig.hub.http, timeout=5) as client:
        # the filler's stop the operator will label: producing, equipment failure for 4 min, producing
        for at, state in ((t0, 10000), (t0 + 60_000, 180000), (t0 + 300_000, 10000)):
            response = await client.post(
                f"/api/mes/events/{FILLER}/mes/machine_state", json={"timestamp_ms": at, "state": state}
            )
            assert response.status_code == 201, response.text
    status, answer = await _post(
        f"{rig.red.url}/uns/downtime",
        {
            "cell": "filler",
            "start_ms": t0 + 60_000,
            "end_ms": t0 + 300_000,
            "reason_code": "NR-JAM",
            "operator_id": "op7",
        },
    )
    assert status == 201, answer
    assert isinstance(answer, dict), answer
    assert (answer["hub_status"], answer["hub"]["status"]) == (201, "stored"), answer
    # the hub's refusal goes back to the caller as is: 422 naming the field
    status, answer = await _post(
        f"{rig.red.url}/uns/downtime",
        {"cell": "filler", "start_ms": t0 + 300_000, "end_ms": t0 + 60_000, "reason_code": "NR-JAM"},
    )
    assert status == 422, answer
    assert isinstance(answer, dict), answer
    assert [d["field"] for d in answer["hub"]["detail"]] == ["end_ms"], answer
    # the label is in the downtime Pareto, the counts (published over MQTT, stored asynchronously) in OEE
    downtime = await _get(f"{rig.hub.http}/api/mes/downtime", path=FILLER, start="-1h")
    assert isinstance(downtime, dict), downtime
    bars = [(r["reason_code"], r["state"], r["duration_s"], r["count"]) for r in downtime["rows"]]
    assert bars == [("NR-JAM", 180000, 240.0, 1)], downtime
    # Node-RED's mqtt out drops what it is given while its broker node is not connected: the counts are
    # re-sent with their event ids until the hub has them, and each is stored once however often it came
    counts = [
        {"cell": "filler", "total": 120, "scrap": 3, "event_id": "nr-1"},
        {"cell": "filler", "total": 80, "event_id": "nr-2"},
    ]
    deadline = time.monotonic() + 20
    while True:
        for count in counts:
            status, answer = await _post(f"{rig.red.url}/uns/count", count)
            assert status == 202, answer
        await asyncio.sleep(1.0)
        oee = await _get(f"{rig.hub.http}/api/mes/oee", path=FILLER, start="-1h")
        assert isinstance(oee, dict), oee
        units = [(r["total"], r["good"], r["scrap"]) for r in oee["rows"]]
        if units == [(200, 197, 3)]:
            break
        assert time.monotonic() < deadline, f"counts from Node-RED not in OEE: {oee}"
