"""The engine against Mosquitto (the reference broker): alarms restored, a DCMD, a failure logged with its inputs."""

from __future__ import annotations

import logging

import orjson
import pytest

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.recording import recorder_on
from tests.fixtures.waiting import until
from tests.uns.rules.harness import engine_on
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.sparkplug.payload import decode_payload

CAPPER = "acme/dallas/bottling/line1/capper"


async def _publish(url: BrokerUrl, topic: str, body: object) -> None:
    async with network_clients(url)(client_id="rules-test-publisher") as client:
        await client.publish(topic, orjson.dumps(body), qos=1)


async def test_alarm_restore_write_and_failure_on_mosquitto(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    url = BrokerUrl.from_str(mosquitto.url)
    rules: list[object] = [
        {
            "name": "jam",
            "trigger": {"kind": "state", "topic": f"{CAPPER}/data/Jam", "to": [True]},
            "actions": [
                {"kind": "alarm", "path": CAPPER, "name": "jam-mosquitto", "priority": 300},
                {
                    "kind": "write",
                    "path": CAPPER,
                    "metric": "Reset",
                    "value": True,
                    "datatype": "Boolean",
                    "role": "host",
                },
            ],
        },
        {
            "name": "broken",
            "trigger": {"kind": "topic", "filter": f"{CAPPER}/data/Jam"},
            "actions": [{"kind": "publish", "topic": "${body.nowhere}", "payload": {}}],
        },
    ]
    dcmd = "spBv1.0/acme-dallas/DCMD/modbus-bottling/capper"
    caplog.set_level(logging.WARNING, logger="uns.rules.engine")
    async with recorder_on(url, ["spBv1.0/#"]) as seen, engine_on(url, rules) as engine:
        await _publish(url, f"{CAPPER}/data/Jam", {"value": True})
        await until(lambda: seen.on(dcmd), what="the DCMD")
        metric = decode_payload(seen.on(dcmd)[0].payload).payload.metrics[0]
        assert (metric.name, metric.value) == ("Reset", True)
        await until(lambda: engine.stats()["broken"].errors == 1, what="the failure")
        assert engine.stats()["jam"].fired == 1
    logged = [r.getMessage() for r in caplog.records if "rule broken failed" in r.getMessage()]
    assert len(logged) == 1
    assert f'"topic":"{CAPPER}/data/Jam"' in logged[0]  # the inputs it failed on
    assert '"body":{"value":true}' in logged[0]
    async with engine_on(url, rules) as again:
        await until(lambda: again.alarms.get(CAPPER, "jam-mosquitto") is not None, what="the restored alarm")
        restored = again.alarms.get(CAPPER, "jam-mosquitto")
        assert restored is not None
        assert (restored.state, restored.priority, restored.acknowledged) == ("active", 300, False)
        await again.acknowledge(path=CAPPER, name="jam-mosquitto", user="ann")
