"""`uns web` as its own process: the live tree from the broker, history and MES forwarded to `uns historian`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.web_rig import accounts, running_hub
from tests.fixtures.mosquitto import Mosquitto, run_mosquitto
from uns.web.historian_proxy import NO_HISTORIAN

TOPIC = "acme/dallas/bottling/line1/filler/data/Temperature"
CELL = "acme/dallas/bottling/line1/filler"


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    with run_mosquitto() as broker:
        yield broker


def _publish(broker: Mosquitto, topic: str, body: dict[str, object]) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="web-component-test")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.publish(topic, orjson.dumps(body), qos=1, retain=True).wait_for_publish(timeout=5)
    finally:
        client.loop_stop()
        client.disconnect()


def _until(condition: Callable[[], object], what: str, within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {within_s} s waiting for {what}"
        time.sleep(0.1)


def _get(url: str, path: str) -> httpx.Response:
    return httpx.get(url + path, timeout=10)


def test_uns_web_serves_the_tree_and_forwards_history_and_mes(mosquitto: Mosquitto, tmp_path: Path) -> None:
    users = accounts(tmp_path)  # no anonymous access anywhere: vera (viewer), otto (app)
    env = {**os.environ, "UNS_HISTORIAN__FLUSH_INTERVAL_S": "0.2", "UNS_MES__ENABLED": "true"}
    common = ["--broker", mosquitto.url, "--broker-config", str(users)]
    historian_args = ["historian", "--broker", mosquitto.url, "--http-port", "0", "--data-dir", str(tmp_path / "h")]
    with running_hub(historian_args, tmp_path / "historian.log", env) as historian:
        # the web process signs in to the historian as otto; its own users sign in to it
        service = historian.replace("http://", "http://otto:otto-secret@")
        web_args = ["web", *common, "--http-port", "0", "--historian-url", service, "--data-dir", str(tmp_path / "w")]
        with running_hub(web_args, tmp_path / "web.log") as web:
            assert _get(web, "/api/tree?prefix=").status_code == 401  # no session, no data
            with httpx.Client(base_url=web, timeout=10) as vera, httpx.Client(base_url=web, timeout=10) as otto:
                for client, user in ((vera, "vera"), (otto, "otto")):
                    login = client.post("/api/login", json={"username": user, "password": f"{user}-secret"})
                    assert login.status_code == 200, login.text
                now = int(time.time() * 1000)
                _publish(mosquitto, TOPIC, {"value": 71.5, "timestamp_ms": now, "quality": "good", "datatype": "Float"})
                # the live tree comes from the web process's own subscription
                _until(lambda: vera.get(f"/api/topic?topic={TOPIC}").status_code == 200, "the topic in the tree")
                assert vera.get(f"/api/topic?topic={TOPIC}").json()["info"]["value"] == 71.5
                # history is the historian's, forwarded
                _until(lambda: vera.get(f"/api/history/last?match={TOPIC}").json().get("rows"), "the sample stored")
                last = vera.get(f"/api/history/last?match={TOPIC}").json()["rows"]
                assert [(row["topic"], row["value"]) for row in last] == [(TOPIC, 71.5)]
                bad = vera.get("/api/history/raw?topic=" + TOPIC + "&start=yesterday-ish")
                assert (bad.status_code, bad.json()["field"]) == (400, "start")
                # MES events: the web layer checks the user's role before forwarding
                event = {"timestamp_ms": now, "operator_id": "op-7", "action": "on"}
                path = f"/api/mes/events/{CELL}/mes/labor"
                assert vera.post(path, json=event).status_code == 403
                stored = otto.post(path, json=event)
                assert stored.status_code == 201, stored.text
                refused = otto.post(path, json={**event, "action": "sideways"})
                assert refused.status_code == 422
                assert refused.json()["detail"][0]["field"] == "action"
                labor = vera.get(f"/api/mes/labor?path={CELL}&by=operator&start=-1h").json()
                assert [(row["group"], row["sessions"]) for row in labor["rows"]] == [("op-7", 1)]
                health = vera.get("/api/health").json()
                assert health["historian-proxy"]["forwarded"] >= 5
    # without a historian the web UI still browses topics and says what is missing
    with running_hub(["web", *common, "--http-port", "0"], tmp_path / "web2.log") as web:
        vera_login = httpx.post(f"{web}/api/login", json={"username": "vera", "password": "vera-secret"}, timeout=10)
        for path in ("/api/history/last?match=%23", "/api/mes/current"):  # the MES views too (they were 404)
            answer = httpx.get(f"{web}{path}", cookies=vera_login.cookies, timeout=10)
            assert (answer.status_code, answer.json()) == (503, {"error": NO_HISTORIAN}), path
        assert "--historian-url" in NO_HISTORIAN  # what to pass, not "enable historian.enabled" (not uns web's)


def test_uns_mes_without_a_view_runs_the_adapter(mosquitto: Mosquitto, tmp_path: Path) -> None:
    args = ["mes", "--broker", mosquitto.url, "--http-port", "0", "--data-dir", str(tmp_path)]
    with running_hub(args, tmp_path / "mes.log") as url:  # demo broker.yaml: loopback is anonymous
        event = {"timestamp_ms": int(time.time() * 1000), "operator_id": "op-9", "action": "on"}
        assert httpx.post(f"{url}/api/mes/events/{CELL}/mes/labor", json=event, timeout=10).status_code == 201
        labor = _get(url, f"/api/mes/labor?path={CELL}&by=operator&start=-1h").json()
        assert [row["group"] for row in labor["rows"]] == ["op-9"]
    assert (tmp_path / "historian.duckdb").exists()
