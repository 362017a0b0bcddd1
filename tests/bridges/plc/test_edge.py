"""PlcSource under the real EdgeNode and Mosquitto: DDEATH on a lost PLC, DBIRTH on recovery, DCMD writes.

An independent Sparkplug host (tests/bridges/edge/spb_host.py) checks every message against the spec.
"""

from __future__ import annotations

from pathlib import Path

from bridges.edge import EdgeNode
from bridges.plc import PlcSource
from model.bridges.common import EdgeNodeConfig
from tests.bridges.edge.spb_host import INT64, SpbHost, until
from tests.bridges.plc.toy import ToyDevice, ToyPlc, ToyTag
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.running import running
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import sparkplug_b_pb2 as pb

_TAGS = [ToyTag("Speed", "s"), ToyTag("Setpoint", "sp", writable=True)]


async def test_lost_plc_dies_and_is_reborn_and_takes_writes(mosquitto: Mosquitto, tmp_path: Path) -> None:
    group = "plc-edge"
    async with ToyPlc({"s": 12, "sp": 50}) as press, ToyPlc({"s": 3, "sp": 4}) as late:
        await late.stop()  # down when the bridge starts
        source = PlcSource(
            name="toys",
            kind="toy",
            devices=[
                ToyDevice(device_id="press", port=press.port, tags=_TAGS),
                ToyDevice(device_id="late", port=late.port, tags=_TAGS),
            ],
        )
        config = EdgeNodeConfig(group=group, primary_host_id="h", first_reading_wait_s=0.5, health_interval_s=0.2)
        host = SpbHost(mosquitto.port, group, "h")
        await host.start()
        node = EdgeNode(
            config=config,
            node_id="toys",
            source=source,
            clients=network_clients(BrokerUrl(port=mosquitto.port)),
            data_dir=tmp_path,
        )
        try:
            async with running(node):
                await until(lambda: host.of("DBIRTH", "press"), what="press born")
                birth = {m.name: m for m in host.of("DBIRTH", "press")[0].payload.metrics}
                assert (birth["Speed"].datatype, birth["Speed"].long_value) == (INT64, 12)
                await press.stop()
                await until(lambda: host.of("DDEATH", "press"), what="DDEATH of the lost PLC")
                await until(lambda: _degraded(host) is True, what="Bridge/Degraded while a PLC is down")
                press.memory["s"] = 13
                await press.start()
                await until(lambda: len(host.of("DBIRTH", "press")) == 2, what="DBIRTH on recovery")
                reborn = {m.name: m for m in host.of("DBIRTH", "press")[1].payload.metrics}
                assert reborn["Speed"].long_value == 13
                await late.start()
                await until(
                    lambda: any(
                        n == "Speed" and v == 3
                        for r in host.of("DBIRTH", "late") + host.of("DDATA", "late")
                        for n, v, _h, _t in r.resolved
                    ),
                    what="the PLC that was down at start read",
                )
                await until(lambda: _degraded(host) is False, what="Bridge/Degraded clear with both PLCs up")
                host.dcmd("toys", "press", [pb.Payload.Metric(name="Setpoint", datatype=INT64, long_value=77)])
                await until(lambda: press.writes == [("sp", 77)], what="the DCMD written to the PLC")
                await until(lambda: (77, False) in host.values("press", "Setpoint"), what="the write read back")
        finally:
            host.stop()
    assert host.violations == []


def _degraded(host: SpbHost) -> object:
    """The edge node's latest ``Bridge/Degraded`` health metric."""
    values = host.values(None, "Bridge/Degraded", kinds=("NBIRTH", "NDATA"))
    return values[-1][0] if values else None
