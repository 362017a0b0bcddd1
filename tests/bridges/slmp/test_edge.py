"""The SLMP bridge under the real EdgeNode and Mosquitto, against virtual-plc in another process.

DBIRTH with the PLC's values (a refused address bad, its neighbours good), DCMD writes (a bit as a
bit), DDEATH when the PLC process dies and DBIRTH when it is back on its port; an independent
Sparkplug host (tests/bridges/edge/spb_host.py) checks every message against the spec.
"""

from __future__ import annotations

import struct
from pathlib import Path

from bridges.edge import EdgeNode
from bridges.slmp import make_source
from model.bridges.slmp import SlmpBridgeConfig
from tests.bridges.edge.spb_host import BOOLEAN, FLOAT, INT16, SpbHost, until
from tests.bridges.slmp.counterpart import virtual_plc
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.running import running
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import sparkplug_b_pb2 as pb


def _float_words(value: float) -> list[int]:
    return list(struct.unpack("<2H", struct.pack("<f", value)))


async def test_chiller_is_born_takes_writes_dies_and_is_reborn(mosquitto: Mosquitto, tmp_path: Path) -> None:
    group = "slmp-edge"
    seed = {"D": {"0": [12], "10": _float_words(6.5)}}
    with virtual_plc(tmp_path, seed=seed, limits=["D:0-1999"]) as plc:
        config = SlmpBridgeConfig.model_validate(
            {
                "name": "slmp-test",
                "edge": {"group": group, "primary_host_id": "h", "first_reading_wait_s": 2.0, "health_interval_s": 0.2},
                "devices": [
                    {
                        "id": "chiller",
                        "port": plc.port,
                        "series": "iQ-R",
                        "timeout_s": 0.5,
                        "backoff_min_s": 0.1,
                        "backoff_max_s": 0.5,
                        "poll_groups": {"default": 0.1},
                        "tags": [
                            {"name": "State", "address": "D0"},
                            {"name": "Temperature", "address": "D10", "type": "float32", "unit": "degC"},
                            {"name": "Setpoint", "address": "D20", "type": "float32", "writable": True},
                            {"name": "Run", "address": "M5", "type": "bool", "writable": True},
                            {"name": "Missing", "address": "D5000"},
                        ],
                    }
                ],
            }
        )
        host = SpbHost(mosquitto.port, group, "h")
        await host.start()
        node = EdgeNode(
            config=config.edge,
            node_id=config.node_id,
            source=make_source(config),
            clients=network_clients(BrokerUrl(port=mosquitto.port)),
            data_dir=tmp_path,
        )
        try:
            async with running(node):
                await until(lambda: host.of("DBIRTH", "chiller"), what="chiller born")
                birth = {m.name: m for m in host.of("DBIRTH", "chiller")[0].payload.metrics}
                assert (birth["State"].datatype, birth["State"].int_value) == (INT16, 12)
                assert (birth["Temperature"].datatype, birth["Temperature"].float_value) == (FLOAT, 6.5)
                assert birth["Run"].datatype == BOOLEAN
                assert birth["Missing"].is_null  # D5000 is past the PLC's D range: bad, its neighbours good
                host.dcmd(
                    "slmp-test", "chiller", [pb.Payload.Metric(name="Setpoint", datatype=FLOAT, float_value=7.25)]
                )
                host.dcmd("slmp-test", "chiller", [pb.Payload.Metric(name="Run", datatype=BOOLEAN, boolean_value=True)])
                await until(lambda: (7.25, False) in host.values("chiller", "Setpoint"), what="setpoint read back")
                await until(lambda: (True, False) in host.values("chiller", "Run"), what="run bit read back")
                port = plc.port
                assert plc.process is not None
                plc.process.terminate()
                await until(lambda: host.of("DDEATH", "chiller"), what="DDEATH of the lost PLC")
                with virtual_plc(tmp_path, seed={"D": {"0": [13]}}, port=port):
                    await until(lambda: len(host.of("DBIRTH", "chiller")) == 2, what="DBIRTH on recovery")
                    reborn = {m.name: m for m in host.of("DBIRTH", "chiller")[1].payload.metrics}
                    assert reborn["State"].int_value == 13
        finally:
            host.stop()
    assert host.violations == []
