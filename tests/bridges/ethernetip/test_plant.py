"""The demo's ControlLogix boiler (bridges/sim/ethernetip_plant.py) read by its bridge under the real EdgeNode.

An independent Sparkplug host (tests/bridges/edge/spb_host.py) checks every message against the spec.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bridges.edge import EdgeNode
from bridges.ethernetip import EnipDevice, make_source
from bridges.sim.ethernetip_plant import EthernetIpPlant, bench_counterpart, demo_bridge, enip_slots
from bridges.sim.layout import MACHINE_METRICS
from bridges.sim.modbus_plant import ClientWrite
from bridges.sim.plant import PlantModel
from model.bridges.ethernetip import EthernetIpBridgeConfig
from tests.bridges.edge.spb_host import SpbHost, until
from tests.fixtures.counterpart import counterpart_reads
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.running import running
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import sparkplug_b_pb2 as pb

FLOAT, DOUBLE, BOOLEAN, INT32, UINT32 = 9, 10, 11, 3, 7

pytestmark = pytest.mark.timeout(60)


def _device(config: EthernetIpBridgeConfig) -> EnipDevice:
    return EnipDevice(bridge=config.name, config=config.devices[0])


def test_the_boiler_is_a_udt_with_its_commands_in_program_scope() -> None:
    slots = {slot.metric.name: slot for slot in enip_slots("boiler", MACHINE_METRICS["boiler"])}
    assert (slots["Temperature"].address, slots["Temperature"].type) == ("Boiler.Temperature", "REAL")
    assert (slots["Counters/Starts"].address, slots["Counters/Starts"].type) == ("Boiler.Counters_Starts", "UDINT")
    assert (slots["Energy"].address, slots["Energy"].type) == ("Boiler.Energy", "LREAL")
    assert slots["Command/Run"].address == "Program:MainProgram.Command_Run"
    assert slots["Setpoint/Temperature"].address == "Program:MainProgram.Setpoint_Temperature"


async def test_the_plant_serves_the_model_and_reports_client_writes() -> None:
    model = PlantModel(seed=7)
    model.advance(5_000)
    snapshot = model.snapshot()
    machine = snapshot.machines["boiler"]
    async with EthernetIpPlant(port=0) as plant:
        await plant.update(snapshot)
        device = _device(demo_bridge(plant.endpoint, "boiler", MACHINE_METRICS["boiler"]))
        await device.connect()
        try:
            fast = {s.name: s.value for s in (await device.read("fast")).samples}
            slow = {s.name: s.value for s in (await device.read("slow")).samples}
            assert await plant.collect_writes() == []
            await device.write("Setpoint/Temperature", 85.5)
            await device.write("Command/Run", not machine.run_enabled)
            writes = await plant.collect_writes()
            browsed = {entry["address"] for entry in device.symbols.browse()} if device.symbols else set()
        finally:
            await device.close()
    assert fast["State"] == int(machine.state)
    assert fast["Power"] == pytest.approx(machine.power_kw, rel=1e-6)
    assert slow["Energy"] == machine.energy_kwh  # LREAL: the double itself
    assert slow["Counters/Starts"] == machine.starts
    assert writes == [
        ClientWrite(machine="boiler", metric="Setpoint/Temperature", value=85.5),
        ClientWrite(machine="boiler", metric="Command/Run", value=not machine.run_enabled),
    ]
    assert {"Boiler.Temperature", "Boiler.Counters_RunHours", "Program:MainProgram.Command_Run"} <= browsed


async def test_the_demo_bridge_births_the_boiler_takes_a_dcmd_dies_and_is_reborn(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    model = PlantModel(seed=3)
    model.advance(2_000)
    async with EthernetIpPlant(port=0) as plant:
        await plant.update(model.snapshot())
        config = demo_bridge(plant.endpoint, "boiler", MACHINE_METRICS["boiler"])
        device = config.devices[0].model_copy(update={"timeout_s": 0.5, "backoff_min_s": 0.1, "backoff_max_s": 0.3})
        config = config.model_copy(update={"devices": [device]})
        edge = config.edge.model_copy(update={"group": "enip-plant", "primary_host_id": "h", "first_reading_wait_s": 2})
        host = SpbHost(mosquitto.port, "enip-plant", "h")
        await host.start()
        node = EdgeNode(
            config=edge,
            node_id=config.node_id,
            source=make_source(config, tmp_path),
            clients=network_clients(BrokerUrl(port=mosquitto.port)),
            data_dir=tmp_path,
        )
        try:
            async with running(node):
                await until(lambda: host.of("DBIRTH", "boiler"), what="the boiler born")
                birth = {m.name: m for m in host.of("DBIRTH", "boiler")[0].payload.metrics}
                assert birth["Setpoint/Temperature"].datatype == FLOAT
                assert birth["Energy"].datatype == DOUBLE
                assert birth["Command/Run"].datatype == BOOLEAN
                assert (birth["State"].datatype, birth["Counters/Starts"].datatype) == (INT32, UINT32)
                host.dcmd(
                    config.node_id,
                    "boiler",
                    [pb.Payload.Metric(name="Setpoint/Temperature", datatype=FLOAT, float_value=91.25)],
                )
                await until(
                    lambda: (91.25, False) in host.values("boiler", "Setpoint/Temperature"),
                    what="the written setpoint read back",
                )
                writes = await plant.collect_writes()
                await plant.__aexit__(None, None, None)  # the controller drops off the network
                await until(lambda: host.of("DDEATH", "boiler"), within_s=10, what="the boiler's DDEATH")
                model.advance(2_000)  # the boiler ran on meanwhile: the edge engine re-births on a changed value
                await plant.__aenter__()  # back on the same port
                await plant.update(model.snapshot())
                await until(lambda: len(host.of("DBIRTH", "boiler")) >= 2, within_s=10, what="a second DBIRTH")
        finally:
            host.stop()
    assert config.node_id == "ethernetip-utilities"
    assert writes == [ClientWrite(machine="boiler", metric="Setpoint/Temperature", value=91.25)]
    assert (tmp_path / "bridges" / "ethernetip-utilities" / "enip-tags" / "boiler.tags.json").exists()
    assert host.violations == []


async def test_the_bench_counterpart_serves_dints_that_keep_changing() -> None:
    counterpart = bench_counterpart(300)
    first, later = await counterpart_reads(counterpart.argv, lambda port: _device(counterpart.bridge(port)))
    assert len(first) == 300
    assert later["Tag/0000"] != first["Tag/0000"]
    start = first["Tag/0000"]
    assert isinstance(start, int)
    assert first["Tag/0299"] == (start + 299) % 100_000  # one whole tick
