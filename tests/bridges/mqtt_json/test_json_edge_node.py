"""The MQTT-JSON bridge end to end: JSON on a device topic -> a validated Sparkplug edge node."""

from __future__ import annotations

from pathlib import Path

from bridges.registry import build_edge_node
from model.bridges import MqttJsonBridgeConfig
from tests.bridges.edge.spb_host import SpbHost, until
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.running import running_task
from uns.connect import network_clients
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl


async def test_json_messages_become_sparkplug_ddata(mosquitto: Mosquitto, tmp_path: Path, unique_topic: str) -> None:
    group, host_id = "json-e2e", "json-host"
    config = MqttJsonBridgeConfig.model_validate(
        {
            "name": "json-node",
            "edge": {"group": group, "primary_host_id": host_id},
            "devices": [
                {
                    "id": "mixer",
                    "mappings": [
                        {"topic": f"{unique_topic}/mixer", "path": "$.t", "name": "Temperature", "unit": "degC"},
                        {"topic": f"{unique_topic}/mixer", "path": "$.run", "name": "Running", "type": "Boolean"},
                    ],
                }
            ],
        }
    )
    url = BrokerUrl.from_str(mosquitto.url)
    host = SpbHost(mosquitto.port, group, host_id)
    await host.start(online=True)
    node = build_edge_node(config, network_clients(url), tmp_path)
    try:
        async with (
            node,
            MqttClient(url=url, client_id=f"{unique_topic}-mixer") as device,
            running_task(node, name="test.json-node"),
        ):
            await until(lambda: host.count("DBIRTH") == 1, what="DBIRTH")
            await device.publish(f"{unique_topic}/mixer", b'{"t": 55.5, "run": true}', qos=1)
            await until(lambda: host.values("mixer", "Temperature") != [], what="Temperature DDATA")
            assert host.values("mixer", "Temperature") == [(55.5, False)]
            assert host.values("mixer", "Running") == [(True, False)]
    finally:
        host.stop()
    assert host.violations == []  # the independent host found no Sparkplug violation
