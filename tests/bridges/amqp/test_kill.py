"""`uns bridge amqp` killed with SIGKILL while it consumes, and restarted: every reading reaches the Sparkplug host."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from tests.bridges.amqp.rabbit import publish, unique
from tests.bridges.edge.spb_host import SpbHost, until
from tests.e2e.crash_rig import kill9, spawn
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.processes import stop_process
from tests.fixtures.rabbitmq import RabbitNode

# two `uns bridge` processes start (an import is seconds on a loaded box), and maybe the session's RabbitMQ
pytestmark = pytest.mark.timeout(150)

READINGS = 300
"""A third published before the kill (some in flight when it comes), a third while down, a third after."""


def _consuming(host: SpbHost) -> bool:
    """The status device has values: the source got its queue (it is born null before)."""
    return any(v is not None for v, _ in host.values("amqp", "Status/Messages", kinds=("DBIRTH", "DDATA")))


async def test_a_bridge_killed_while_consuming_loses_nothing(
    mosquitto: Mosquitto, rabbitmq: RabbitNode, tmp_path: Path
) -> None:
    group, host_id = "amqp-kill", "amqp-kill-host"
    exchange, queue = unique("kill"), unique("uns-kill")
    host = SpbHost(mosquitto.port, group, host_id)
    await host.start(online=True)
    config = tmp_path / "uns.yaml"
    config.write_text(
        orjson.dumps(
            {
                "bridges": [
                    {
                        "kind": "amqp",
                        "name": "lims",
                        "edge": {"group": group, "primary_host_id": host_id, "first_reading_wait_s": 0.2},
                        "url": rabbitmq.url,
                        "exchange": exchange,
                        "queue": queue,
                        "prefetch": 20,
                        "routes": [{"devices": [{"id": "meter", "metrics": [{"path": "$.n", "name": "N",
                                                                              "type": "Int64"}]}]}],
                    }
                ]
            }
        ).decode()  # JSON is YAML
    )  # fmt: skip
    readings = [("lab.meter", orjson.dumps({"n": n})) for n in range(READINGS)]
    log = tmp_path / "bridge.log"
    args = ["bridge", "amqp", "--config", str(config), "--broker", mosquitto.url, "--data-dir", str(tmp_path / "data")]
    bridge = spawn(args, log, {"UNS_LOG_LEVEL": "INFO"})

    def seen() -> set[object]:
        return {v for v, _ in host.values("meter", "N", kinds=("DBIRTH", "DDATA"))} - {None}

    try:
        await until(lambda: host.count("NBIRTH") == 1, what="the bridge's NBIRTH", within_s=30)
        await until(lambda: _consuming(host), what="the bridge consuming (its status device born)", within_s=30)
        await publish(rabbitmq.url, exchange, readings[:100])
        await until(lambda: len(seen()) >= 30, what="the first readings at the host")
        await asyncio.to_thread(kill9, bridge)  # mid-stream: deliveries in flight, unacknowledged
        await publish(rabbitmq.url, exchange, readings[100:200])  # the durable queue keeps them meanwhile
        bridge = spawn(args, log, {"UNS_LOG_LEVEL": "INFO"})
        await until(lambda: host.count("NBIRTH") == 2, what="the restarted bridge's NBIRTH", within_s=30)
        await publish(rabbitmq.url, exchange, readings[200:])
        await until(lambda: len(seen()) == READINGS, what=f"every reading at the host: {len(seen())}", within_s=40)
        await until(lambda: rabbitmq.queue_depth(queue) == 0, what="the queue drained", within_s=30)
    finally:
        await asyncio.to_thread(stop_process, bridge, 20)
        host.stop()
    assert seen() == set(range(READINGS))
    assert host.violations == []
