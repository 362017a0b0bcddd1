"""A scaled register through the whole Modbus bridge: pymodbus server -> ModbusSource -> EdgeNode -> Mosquitto.

The value on the wire is the number the scale implies (``7.1``), not the binary product
(``71 * 0.1 == 7.1000000000000005``), in the DBIRTH and in the DDATA after a DCMD write.
"""

from __future__ import annotations

from pathlib import Path

from bridges.registry import build_edge_node
from model.bridges import EdgeNodeConfig
from tests.bridges.edge.spb_host import DOUBLE, SpbHost, until
from tests.bridges.modbus.servers import TcpServer, bridge_config, sim_device
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.running import running
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import sparkplug_b_pb2 as pb


async def test_scaled_value_is_published_as_written(mosquitto: Mosquitto, tmp_path: Path) -> None:
    group = "scaled-e2e"
    async with TcpServer(sim_device(holding={0: [71, 1001]})) as server:
        config = bridge_config(
            {
                "id": "oven",
                "port": server.port,
                "poll_groups": {"default": 0.1},
                "registers": [
                    {"name": "Temp", "table": "holding", "address": 0, "type": "int16", "scale": 0.1, "writable": True},
                    {"name": "Flow", "table": "holding", "address": 1, "scale": 0.001},
                ],
            }
        ).model_copy(update={"edge": EdgeNodeConfig(group=group, primary_host_id="h")})
        host = SpbHost(mosquitto.port, group, "h")
        await host.start()
        node = build_edge_node(config, network_clients(BrokerUrl(port=mosquitto.port)), tmp_path)
        try:
            async with running(node):
                await until(lambda: host.count("DBIRTH") == 1, what="the birth")
                birth = {m.name: m for m in host.of("DBIRTH", "oven")[0].payload.metrics}
                assert [(birth[n].datatype, repr(birth[n].double_value)) for n in ("Temp", "Flow")] == [
                    (DOUBLE, "7.1"),
                    (DOUBLE, "1.001"),
                ]
                host.dcmd(config.node_id, "oven", [pb.Payload.Metric(name="Temp", datatype=DOUBLE, double_value=2.9)])
                await until(lambda: host.values("oven", "Temp"), what="the written value read back")
                (value, _historical) = host.values("oven", "Temp")[0]
                assert repr(value) == "2.9"  # raw 29; 29 * 0.1 == 2.9000000000000004
        finally:
            host.stop()
    assert host.violations == []
