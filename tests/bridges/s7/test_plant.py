"""The demo's S7-1500 compressor (bridges/sim/s7_plant.py) read by its S7 bridge under the real EdgeNode.

An independent Sparkplug host (tests/bridges/edge/spb_host.py) checks every message against the spec.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bridges.edge import EdgeNode
from bridges.s7 import make_source
from bridges.sim.layout import MACHINE_METRICS
from bridges.sim.modbus_plant import ClientWrite
from bridges.sim.plant import PlantModel
from bridges.sim.s7_plant import S7Plant, bench_counterpart, demo_bridge, s7_slots
from tests.bridges.edge.spb_host import SpbHost, until
from tests.bridges.s7.servers import plc
from tests.fixtures.counterpart import counterpart_reads
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.running import running
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import sparkplug_b_pb2 as pb

FLOAT, BOOLEAN = 9, 11


def test_db1_layout_follows_s7_rules() -> None:
    slots = {slot.metric.name: slot.address for slot in s7_slots(MACHINE_METRICS["compressor"])}
    assert slots["State"].text == "DB1.DBD0"
    assert slots["State"].type.name == "DINT"
    assert slots["Energy"].type.name == "LREAL"
    assert slots["Command/Run"].bit == 0  # a BOOL alone in its byte
    assert all(address.start % 2 == 0 for address in slots.values())  # every value on an even byte


async def test_the_plant_serves_the_model_and_reports_client_writes() -> None:
    model = PlantModel(seed=7)
    model.advance(5_000)
    snapshot = model.snapshot()
    machine = snapshot.machines["compressor"]
    async with S7Plant(port=0) as plant:
        await plant.update(snapshot)
        device = plc(demo_bridge(plant.endpoint, "compressor", MACHINE_METRICS["compressor"]))
        await device.connect()
        try:
            fast = {s.name: s.value for s in (await device.read("fast")).samples}
            slow = {s.name: s.value for s in (await device.read("slow")).samples}
            assert await plant.collect_writes() == []
            await device.write("Setpoint/Pressure", 6.5)
            await device.write("Command/Run", not machine.run_enabled)
            writes = await plant.collect_writes()
        finally:
            await device.close()
    assert fast["State"] == int(machine.state)
    assert fast["Power"] == pytest.approx(machine.power_kw, rel=1e-6)
    assert slow["Energy"] == machine.energy_kwh  # LREAL: the double itself
    assert slow["Counters/Starts"] == machine.starts
    assert writes == [
        ClientWrite(machine="compressor", metric="Setpoint/Pressure", value=6.5),
        ClientWrite(machine="compressor", metric="Command/Run", value=not machine.run_enabled),
    ]


async def test_the_demo_bridge_births_the_compressor_and_takes_a_dcmd(mosquitto: Mosquitto, tmp_path: Path) -> None:
    model = PlantModel(seed=3)
    model.advance(2_000)
    async with S7Plant(port=0) as plant:
        await plant.update(model.snapshot())
        config = demo_bridge(plant.endpoint, "compressor", MACHINE_METRICS["compressor"])
        edge = config.edge.model_copy(update={"group": "s7-plant", "primary_host_id": "h", "first_reading_wait_s": 2})
        host = SpbHost(mosquitto.port, "s7-plant", "h")
        await host.start()
        node = EdgeNode(
            config=edge,
            node_id=config.node_id,
            source=make_source(config),
            clients=network_clients(BrokerUrl(port=mosquitto.port)),
            data_dir=tmp_path,
        )
        try:
            async with running(node):
                await until(lambda: host.of("DBIRTH", "compressor"), what="the compressor born")
                birth = {m.name: m for m in host.of("DBIRTH", "compressor")[0].payload.metrics}
                assert birth["Setpoint/Pressure"].datatype == FLOAT
                assert birth["Command/Run"].datatype == BOOLEAN
                host.dcmd(
                    config.node_id,
                    "compressor",
                    [pb.Payload.Metric(name="Setpoint/Pressure", datatype=FLOAT, float_value=7.25)],
                )
                await until(
                    lambda: (7.25, False) in host.values("compressor", "Setpoint/Pressure"),
                    what="the written setpoint read back",
                )
                writes = await plant.collect_writes()
        finally:
            host.stop()
    assert config.node_id == "s7-utilities"
    assert writes == [ClientWrite(machine="compressor", metric="Setpoint/Pressure", value=7.25)]
    assert host.violations == []


async def test_the_bench_counterpart_serves_ints_that_keep_changing() -> None:
    counterpart = bench_counterpart(300)
    first, later = await counterpart_reads(counterpart.argv, lambda port: plc(counterpart.bridge(port)))
    assert len(first) == 300
    assert later["Tag/0000"] != first["Tag/0000"]
    start = first["Tag/0000"]
    assert isinstance(start, int)
    assert first["Tag/0299"] == (start + 299) & 0x7FFF  # one whole tick
