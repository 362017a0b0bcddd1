"""The MQTT-JSON bridge's persistent session: a kill -9 of the bridge loses nothing its source broker accepted."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson

from model.bridges import MqttJsonBridgeConfig
from tests.bridges.edge.spb_host import SpbHost, until
from tests.e2e.crash_rig import kill9, spawn
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.processes import stop_process
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl

SENT = 900
"""Counter values the device publishes: a third before the kill, a third while the bridge is down, a third after."""


def test_the_session_id_is_stable_and_derived_from_the_node() -> None:
    base = {
        "name": "mixers",
        "edge": {"group": "plant"},
        "devices": [{"id": "m", "mappings": [{"topic": "t", "name": "x"}]}],
    }
    assert MqttJsonBridgeConfig.model_validate(base).session_id == "uns-json-plant-mixers"
    node = {**base, "edge": {"group": "plant", "node": "json1"}}
    assert MqttJsonBridgeConfig.model_validate(node).session_id == "uns-json-plant-json1"
    assert MqttJsonBridgeConfig.model_validate({**base, "client_id": "mine"}).session_id == "mine"


def _spawn_bridge(config: Path, broker: str, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    args = ["bridge", "mqtt_json", "--config", str(config), "--broker", broker, "--data-dir", str(data_dir)]
    return spawn(args, log, {"UNS_LOG_LEVEL": "INFO"})


async def test_a_bridge_killed_mid_stream_loses_nothing(
    mosquitto: Mosquitto, tmp_path: Path, unique_topic: str
) -> None:
    group, host_id, device_topic = "json-kill", "json-kill-host", f"{unique_topic}/counter"
    config = tmp_path / "uns.yaml"
    config.write_text(
        orjson.dumps(
            {
                "bridges": [
                    {
                        "kind": "mqtt_json",
                        "name": "jsonkill",
                        "edge": {"group": group, "primary_host_id": host_id, "first_reading_wait_s": 0.2},
                        "devices": [
                            {
                                "id": "counter",
                                "mappings": [{"topic": device_topic, "path": "$.n", "name": "N", "type": "Int64"}],
                            }
                        ],
                    }
                ]
            }
        ).decode()  # JSON is YAML
    )
    host = SpbHost(mosquitto.port, group, host_id)
    await host.start(online=True)
    log = tmp_path / "bridge.log"
    bridge = _spawn_bridge(config, mosquitto.url, tmp_path / "data", log)
    try:

        def seen() -> set[object]:
            # a birth before the first reading carries the metric as null: not a value
            return {v for v, _ in host.values("counter", "N", kinds=("DBIRTH", "DDATA"))} - {None}

        await until(lambda: host.count("NBIRTH") == 1, what="the bridge's NBIRTH", within_s=30)
        async with MqttClient(url=BrokerUrl.from_str(mosquitto.url), client_id=f"{unique_topic}-dev") as device:
            for n in range(SENT):
                if n == SENT // 3:  # mid-stream: part of what was sent is still on its way through the bridge
                    kill9(bridge)
                if n == 2 * SENT // 3:
                    bridge = _spawn_bridge(config, mosquitto.url, tmp_path / "data", log)
                await device.publish(device_topic, orjson.dumps({"n": n}), qos=1)
        await until(lambda: len(seen()) == SENT, what="every counter value at the host", within_s=40)
        assert seen() == set(range(SENT))
        assert host.count("NBIRTH") == 2  # the restart was a new session of the edge node
    finally:
        stop_process(bridge, 20)
        host.stop()
