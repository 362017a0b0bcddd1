"""The demo's iQ-R chiller: virtual-plc in process holds the model's values, the demo bridge reads and writes them."""

from __future__ import annotations

import pytest

from bridges.sim.layout import MACHINE_METRICS
from bridges.sim.modbus_plant import ClientWrite
from bridges.sim.plant import PlantModel
from bridges.sim.slmp_plant import SLMP_NODE, SlmpPlant, bench_counterpart, demo_bridge, slmp_slots
from bridges.slmp.device import SlmpPlc
from tests.fixtures.counterpart import counterpart_reads


def test_slots_give_every_metric_its_own_words() -> None:
    slots = {slot.metric.name: (slot.address, slot.type) for slot in slmp_slots(MACHINE_METRICS["chiller"])}
    assert slots["State"] == ("D100", "int32")
    assert slots["Energy"][1] == "float64"
    assert slots["Setpoint/Temperature"] == ("D200", "float32")
    assert slots["Command/Run"] == ("M100", "bool")


async def test_the_demo_bridge_reads_the_models_values_and_its_writes_reach_the_plant() -> None:
    model = PlantModel(seed=3)
    model.advance(60_000)
    snapshot = model.snapshot()
    chiller = snapshot.machines["chiller"]
    async with SlmpPlant(port=0) as plant:
        await plant.update(snapshot)
        config = demo_bridge(plant.endpoint, "chiller", MACHINE_METRICS["chiller"])
        assert (config.name, config.edge.group, config.devices[0].id) == (SLMP_NODE, "acme-dallas", "chiller")
        device = SlmpPlc(bridge=config.name, config=config.devices[0])
        await device.connect()
        try:
            read = {s.name: s.value for group in ("fast", "slow") for s in (await device.read(group)).samples}
            assert await plant.collect_writes() == []
            await device.write("Setpoint/Temperature", 5.5)
            await device.write("Command/Run", not chiller.run_enabled)
            writes = await plant.collect_writes()
        finally:
            await device.close()
    assert read["State"] == int(chiller.state)
    assert read["Counters/Starts"] == chiller.starts
    assert read["Energy"] == chiller.energy_kwh  # float64: exact
    assert read["Power"] == pytest.approx(chiller.power_kw, rel=1e-6)  # float32
    assert read["Temperature"] == pytest.approx(chiller.process["Temperature"], rel=1e-6)
    assert read["Setpoint/Temperature"] == pytest.approx(chiller.setpoints["Temperature"], rel=1e-6)
    assert read["Command/Run"] is chiller.run_enabled
    assert sorted(writes, key=lambda w: w.metric) == [
        ClientWrite("chiller", "Command/Run", not chiller.run_enabled),
        ClientWrite("chiller", "Setpoint/Temperature", 5.5),
    ]


async def test_the_bench_counterpart_serves_words_that_keep_changing() -> None:
    counterpart = bench_counterpart(300)

    def device(port: int) -> SlmpPlc:
        config = counterpart.bridge(port)
        return SlmpPlc(bridge=config.name, config=config.devices[0])

    first, later = await counterpart_reads(counterpart.argv, device)
    assert later["Tag/0000"] != first["Tag/0000"], "the counterpart's words never changed"
    assert len(later) == 300
    tick = later["Tag/0000"]
    assert isinstance(tick, int)
    # D<i> = tick + i; a read the simulator's next tick lands in may see it from some word on
    assert later["Tag/0299"] in ((tick + 299) & 0xFFFF, (tick + 300) & 0xFFFF)
