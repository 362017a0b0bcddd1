"""The GPIO source as a Sparkplug edge node on an in-memory chip: states and counters born, DDATA, DCMD to an output.

An independent Sparkplug host (tests/bridges/edge/spb_host.py: raw paho-mqtt and the generated protobuf)
checks every message of the node.
"""

from __future__ import annotations

import time
from pathlib import Path

from bridges.edge import EdgeNode
from bridges.gpio import make_source
from bridges.gpio.memory import MemoryChip, MemoryGpio
from model.bridges import GpioBridgeConfig
from tests.bridges.edge.spb_host import BOOLEAN, SpbHost, until
from tests.fixtures.running import running
from uns.broker import EmbeddedBroker
from uns.connect import network_clients
from uns.sparkplug import sparkplug_b_pb2 as pb


async def test_inputs_outputs_and_commands_under_the_edge_node(broker: EmbeddedBroker, tmp_path: Path) -> None:
    group, host_id = "io", "gpio-host"
    host = SpbHost(broker.url.port, group, host_id)
    await host.start(online=True)
    chip = MemoryChip(count=8)
    config = GpioBridgeConfig.model_validate(
        {
            "name": "palletizer-io",
            "edge": {"group": group, "primary_host_id": host_id},
            "devices": [
                {
                    "id": "pal",
                    "inputs": [
                        {"line": 0, "name": "Guard/Closed"},
                        {"line": 1, "name": "Counters/PartDone", "mode": "counter", "debounce_ms": 5},
                    ],
                    "outputs": [{"line": 5, "name": "Lamp/Red"}],
                }
            ],
        }
    )
    source = make_source(config, MemoryGpio({"/dev/gpiochip0": chip}))
    node = EdgeNode(
        config=config.edge,
        node_id=config.node_id,
        source=source,
        clients=network_clients(broker.url),
        data_dir=tmp_path,
    )
    try:
        async with running(node, name="tests.gpio-node"):
            await until(lambda: host.of("DBIRTH", "pal"), what="the DBIRTH")
            past = time.monotonic_ns() - 1_000_000_000
            for n in range(3):
                chip.drive(1, True, at_ns=past + n * 20_000_000)
                chip.drive(1, False, at_ns=past + n * 20_000_000 + 10_000_000)
            chip.drive(0, True)
            await until(lambda: _last(host, "Counters/PartDone") == 3, what="three parts")
            await until(lambda: _last(host, "Guard/Closed") is True, what="the guard closed")
            metric = pb.Payload.Metric(name="Lamp/Red", datatype=BOOLEAN, boolean_value=True)
            host.dcmd("palletizer-io", "pal", [metric])
            await until(lambda: chip.high[5], what="the lamp on")
            await until(lambda: _last(host, "Lamp/Red") is True, what="the lamp reported on")
    finally:
        host.stop()
    birth = {name: value for name, value, _h, _t in host.of("DBIRTH", "pal")[0].resolved}
    assert birth == {"Guard/Closed": False, "Counters/PartDone": 0, "Lamp/Red": False}
    assert host.violations == []


def _last(host: SpbHost, name: str) -> object:
    values = host.values("pal", name, kinds=("DBIRTH", "DDATA"))
    return values[-1][0] if values else None
