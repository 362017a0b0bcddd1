"""A rule's write reaches a machine: DCMD to a real edge node (the GPIO source on an in-memory chip) drives its output.

The independent Sparkplug host (tests/bridges/edge/spb_host.py: raw paho-mqtt and the generated protobuf) is the
primary host the node waits for, and checks every message of the node.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from bridges.edge import EdgeNode
from bridges.gpio import make_source
from bridges.gpio.memory import MemoryChip, MemoryGpio
from model.bridges import GpioBridgeConfig
from tests.bridges.edge.spb_host import SpbHost, until
from tests.fixtures.running import running_task
from tests.uns.rules.harness import RULES
from uns.broker import EmbeddedBroker
from uns.connect import network_clients
from uns.rules.actions import Target
from uns.rules.engine import RuleEngine

PALLETIZER = "acme/dallas/packaging/line1/palletizer"


def _targets(path: str) -> Target | None:
    return ("io", "palletizer-io", "pal") if path == PALLETIZER else None


async def test_a_rule_turns_a_lamp_on_through_the_edge_node(broker: EmbeddedBroker, tmp_path: Path) -> None:
    host = SpbHost(broker.url.port, "io", "gpio-host")
    await host.start(online=True)
    chip = MemoryChip(count=8)
    config = GpioBridgeConfig.model_validate(
        {
            "name": "palletizer-io",
            "edge": {"group": "io", "primary_host_id": "gpio-host"},
            "devices": [{"id": "pal", "outputs": [{"line": 5, "name": "Lamp/Red"}]}],
        }
    )
    node = EdgeNode(
        config=config.edge,
        node_id=config.node_id,
        source=make_source(config, MemoryGpio({"/dev/gpiochip0": chip})),
        clients=network_clients(broker.url),
        data_dir=tmp_path,
    )
    rules = RULES.validate_python(
        [
            {
                "name": "jam-lamp",
                "trigger": {"kind": "state", "topic": f"{PALLETIZER}/data/Jam"},
                "actions": [
                    {
                        "kind": "write",
                        "path": PALLETIZER,
                        "metric": "Lamp/Red",
                        "value": "${value}",
                        "datatype": "Boolean",
                        "role": "host",
                        "min_interval_s": 0,
                    }
                ],
            }
        ]
    )
    engine = RuleEngine(rules=rules, clients=network_clients(broker.url), targets=_targets)
    try:
        async with (
            node,
            engine,
            network_clients(broker.url)(client_id="rules-test-publisher") as publisher,
            running_task(node, name="test.node"),
            running_task(engine, name="test.rules"),
        ):
            await until(lambda: host.of("DBIRTH", "pal"), what="the DBIRTH")
            for value in (False, True):  # a change to true fires the rule
                await publisher.publish(f"{PALLETIZER}/data/Jam", orjson.dumps({"value": value}), qos=1)
            await until(lambda: chip.high[5], what="the lamp on")
            await until(lambda: _last(host, "Lamp/Red") is True, what="the lamp reported on")
            await publisher.publish(f"{PALLETIZER}/data/Jam", orjson.dumps({"value": False}), qos=1)
            await until(lambda: not chip.high[5], what="the lamp off")
    finally:
        host.stop()
    assert engine.stats()["jam-lamp"].fired == 2
    assert host.violations == []


def _last(host: SpbHost, name: str) -> object:
    values = host.values("pal", name, kinds=("DBIRTH", "DDATA"))
    return values[-1][0] if values else None
