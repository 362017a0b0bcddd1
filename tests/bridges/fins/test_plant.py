"""The demo's NJ pump PLC: the bridge from demo_bridge reads the snapshot's values, and writes come back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridges.edge import EdgeNode
from bridges.fins import make_source
from bridges.plc import PlcSource
from bridges.sim.fins_plant import FinsPlant, bench_counterpart, demo_bridge, fins_slots
from bridges.sim.layout import MACHINE_METRICS, Metric, metric_value
from bridges.sim.modbus_plant import ClientWrite
from bridges.sim.plant import MachineSnapshot, MachineState, PlantModel, PlantSnapshot
from bridges.source import Samples, SourceEvent
from model.bridges.fins_address import parse_address
from tests.bridges.edge.spb_host import BOOLEAN, DOUBLE, FLOAT, INT32, UINT32, SpbHost, until
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.running import running
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import sparkplug_b_pb2 as pb

PUMP = (
    Metric(name="State", datatype="Int32"),
    Metric(name="FaultCode", datatype="Int32"),
    Metric(name="Production/GoodCount", datatype="UInt32", unit="m3"),
    Metric(name="Speed", datatype="Float", unit="rpm"),
    Metric(name="Temperature", datatype="Float", unit="degC", poll="slow"),
    Metric(name="Energy", datatype="Double", unit="kWh", poll="slow"),
    Metric(name="PartDone", datatype="Boolean"),
    Metric(name="Setpoint/Speed", datatype="Float", unit="rpm", writable=True),
    Metric(name="Command/Run", datatype="Boolean", writable=True),
)


def _snapshot(good: int = 123_456, speed: float = 1450.5) -> PlantSnapshot:
    machine = MachineSnapshot(
        state=MachineState.RUNNING, fault_code=0, good_count=good, scrap_count=0, speed=speed, cycle_time_s=1.0,
        part_done=True, energy_kwh=98_765.4321, process={"Temperature": 31.25}, speed_setpoint=1500.0,
        run_enabled=True, state_ms={},
    )  # fmt: skip
    return PlantSnapshot(time_ms=0, machines={"pump": machine})


def test_slots_give_each_metric_its_own_words() -> None:
    slots = {slot.metric.name: (slot.address, slot.type) for slot in fins_slots(PUMP)}
    assert slots == {
        "State": ("D100", "int32"),
        "FaultCode": ("D102", "int32"),
        "Production/GoodCount": ("D104", "uint32"),
        "Speed": ("D106", "float32"),
        "Temperature": ("D108", "float32"),
        "Energy": ("D110", "float64"),
        "PartDone": ("W0.00", "bool"),
        "Setpoint/Speed": ("D200", "float32"),
        "Command/Run": ("W1.00", "bool"),
    }


@contextlib.asynccontextmanager
async def _events(source: PlcSource) -> AsyncIterator[AsyncIterator[SourceEvent]]:
    async with source:
        events = source.events()
        try:
            yield events
        finally:
            await events.aclose()


async def test_the_demo_bridge_reads_the_snapshot_and_writes_reach_the_plant() -> None:
    async with FinsPlant(metrics=PUMP) as plant:
        await plant.update(_snapshot())
        config = demo_bridge(plant.endpoint, "pump", PUMP)
        assert (config.name, config.edge.group, config.devices[0].id) == ("fins-utilities", "acme-dallas", "pump")
        source = make_source(config)
        values: dict[str, object] = {}
        async with _events(source) as events:
            async with asyncio.timeout(5):
                async for event in events:
                    assert isinstance(event, Samples), event
                    values.update({s.name: s.value for s in event.samples})
                    if len(values) == len(PUMP):
                        break
            await source.write("pump", "Setpoint/Speed", 1200.0)
            await source.write("pump", "Command/Run", False)
        assert values == {
            "State": int(MachineState.RUNNING), "FaultCode": 0, "Production/GoodCount": 123_456, "Speed": 1450.5,
            "Temperature": 31.25, "Energy": 98_765.4321, "PartDone": True, "Setpoint/Speed": 1500.0,
            "Command/Run": True,
        }  # fmt: skip
        assert await plant.collect_writes() == [
            ClientWrite("pump", "Setpoint/Speed", 1200.0),
            ClientWrite("pump", "Command/Run", False),
        ]


async def test_edge_node_births_dies_with_the_plc_and_is_reborn(mosquitto: Mosquitto, tmp_path: Path) -> None:
    group = "acme-dallas"
    host = SpbHost(mosquitto.port, group, "uns-hub")
    await host.start()
    try:
        async with FinsPlant(metrics=PUMP) as plant:
            await plant.update(_snapshot())
            config = demo_bridge(plant.endpoint, "pump", PUMP)
            edge = config.edge.model_copy(update={"first_reading_wait_s": 1.0, "health_interval_s": 0.2})
            node = EdgeNode(
                config=edge,
                node_id=config.node_id,
                source=make_source(config),
                clients=network_clients(BrokerUrl(port=mosquitto.port)),
                data_dir=tmp_path,
            )
            async with running(node):
                await until(lambda: host.of("DBIRTH", "pump"), what="DBIRTH of the pump")
                birth = {m.name: m for m in host.of("DBIRTH", "pump")[0].payload.metrics}
                assert (birth["State"].datatype, birth["State"].int_value) == (INT32, int(MachineState.RUNNING))
                assert (birth["Production/GoodCount"].datatype, birth["Production/GoodCount"].int_value) == (
                    UINT32, 123_456,
                )  # fmt: skip
                assert (birth["Speed"].datatype, birth["Speed"].float_value) == (FLOAT, 1450.5)
                assert (birth["Energy"].datatype, birth["Energy"].double_value) == (DOUBLE, 98_765.4321)
                assert (birth["PartDone"].datatype, birth["PartDone"].boolean_value) == (BOOLEAN, True)
                await plant.stop_plc()
                await until(lambda: host.of("DDEATH", "pump"), what="DDEATH when the PLC goes away")
                await plant.update(_snapshot(good=123_457))
                await plant.start_plc()
                await until(lambda: len(host.of("DBIRTH", "pump")) == 2, what="DBIRTH when it is back")
                reborn = {m.name: m for m in host.of("DBIRTH", "pump")[1].payload.metrics}
                assert reborn["Production/GoodCount"].int_value == 123_457
                host.dcmd(config.node_id, "pump", [pb.Payload.Metric(name="Setpoint/Speed", datatype=FLOAT,
                                                                     float_value=900.0)])  # fmt: skip
                await until(
                    lambda: plant.server.memory.get_words(parse_address("D200"), 2).hex() == "00004461",
                    what="the DCMD written into D200",
                )
    finally:
        host.stop()
    assert host.violations == []


def test_bench_counterpart_runs_the_simulator_in_another_process() -> None:
    counterpart = bench_counterpart(1000)
    assert counterpart.argv[1:] == ("-m", "bridges.sim.fins_server", "--words", "1000")
    config = counterpart.bridge(9600)
    assert len(config.devices[0].tags) == 1000
    assert config.devices[0].poll_groups == {"default": 0.1}


async def test_the_model_pump_is_served_and_read_with_every_metric() -> None:
    metrics = MACHINE_METRICS["pump"]
    snapshot = PlantModel(seed=3).snapshot()
    async with FinsPlant() as plant:  # machine "pump", its metrics from the layout
        await plant.update(snapshot)
        source = make_source(demo_bridge(plant.endpoint, "pump", metrics))
        values: dict[str, object] = {}
        async with _events(source) as events:
            async with asyncio.timeout(5):
                async for event in events:
                    assert isinstance(event, Samples), event
                    values.update({s.name: s.value for s in event.samples})
                    if len(values) == len(metrics):
                        break
    pump = snapshot.machines["pump"]
    expected = {m.name: metric_value(pump, m.name) for m in metrics}
    assert values.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, float):  # Float metrics travel as REAL: compare at float32 precision
            assert values[name] == pytest.approx(value, rel=1e-6), name
        else:
            assert values[name] == value, name
