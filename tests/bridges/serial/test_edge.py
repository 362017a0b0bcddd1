"""The serial source as a Sparkplug edge node: a pallet scale's weights as DDATA, each pallet a lot at QoS 1.

An independent Sparkplug host (tests/bridges/edge/spb_host.py: raw paho-mqtt and the generated protobuf)
checks every message of the node; a listener on the broker takes the MES events.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from bridges.registry import build_edge_node
from bridges.sim.serial_scale import SimulatedScale
from model.bridges import SerialBridgeConfig
from tests.bridges.edge.spb_host import BOOLEAN, SpbHost, until
from tests.fixtures.recording import recording
from tests.fixtures.running import running
from uns.broker import EmbeddedBroker
from uns.connect import network_clients
from uns.mqtt.client import MqttClient
from uns.sparkplug import sparkplug_b_pb2 as pb

_CELL = "acme/dallas/packaging/line3/palletizer"


async def test_pallet_weights_and_lots_under_the_edge_node(broker: EmbeddedBroker, tmp_path: Path) -> None:
    group, host_id = "pack", "serial-host"
    host = SpbHost(broker.url.port, group, host_id)
    await host.start(online=True)
    async with (
        SimulatedScale() as scale,
        MqttClient(url=broker.url, client_id="mes-listener") as listener,
        recording(listener, [f"{_CELL}/mes/#"], name="tests.serial.mes-listener") as listened,
    ):
        seen = listened.messages
        config = SerialBridgeConfig.model_validate(
            {
                "name": "palletizing",
                "edge": {"group": group, "primary_host_id": host_id},
                "devices": [
                    {
                        "id": "scale",
                        "port": scale.port,
                        "protocol": {"kind": "mt_sics"},
                        "poll": {"interval_s": 0.05, "timeout_s": 0.5},
                        "events": [
                            {
                                "event": "lot_production",
                                "equipment_path": _CELL,
                                "trigger": "stable_load",
                                "min_load": 50,
                                "fields": {"lot_id": "PAL-${time}", "quantity": "${weight}", "unit": "${unit}"},
                                "constants": {"product_id": "cola-pallet"},
                            }
                        ],
                    }
                ],
            }
        )
        node = build_edge_node(config, network_clients(broker.url), tmp_path)
        try:
            async with running(node, name="tests.serial-node"):
                await until(lambda: host.of("DBIRTH", "scale"), what="the scale's DBIRTH")
                scale.load(612.4, settle_s=0.2)  # a pallet arrives
                await until(lambda: len(seen) == 1, what="the first pallet's lot")
                scale.load(0.0)  # taken away; the next one
                await until(lambda: _weights(host)[-1] == 0.0, what="the empty scale")
                scale.load(598.0, settle_s=0.2)
                await until(lambda: len(seen) == 2, what="the second pallet's lot")
                # a tare from the host: DCMD Command/Tare reaches the scale, which then reads net 0
                metric = pb.Payload.Metric(name="Command/Tare", datatype=BOOLEAN, boolean_value=True)
                host.dcmd("palletizing", "scale", [metric])
                await until(lambda: _weights(host)[-1] == 0.0, what="net 0 after the tare")
        finally:
            host.stop()
    bodies = [orjson.loads(m.payload) for m in seen]
    assert [(m.topic, m.qos) for m in seen] == [(f"{_CELL}/mes/lot_production", 1)] * 2
    assert [(b["quantity"], b["unit"], b["product_id"], b["source"]) for b in bodies] == [
        (612.4, "kg", "cola-pallet", "palletizing"),
        (598.0, "kg", "cola-pallet", "palletizing"),
    ]
    assert bodies[0]["lot_id"].startswith("PAL-")
    assert bodies[0]["event_id"] != bodies[1]["event_id"]
    assert 612.4 in _weights(host)
    assert b"T" in scale.commands
    assert host.violations == []


def _weights(host: SpbHost) -> list[object]:
    return [v for v, _ in host.values("scale", "Weight", kinds=("DBIRTH", "DDATA"))]
