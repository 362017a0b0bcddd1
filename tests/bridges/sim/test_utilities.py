"""The utilities' simulated PLCs as the demo wires them: served values, and client writes reaching the model."""

from __future__ import annotations

import pytest

from bridges.plc import PlcSource
from bridges.registry import build_source
from bridges.sim.layout import MACHINE_METRICS, UTILITY_MACHINES, utility_node
from bridges.sim.plant import PlantModel
from bridges.sim.service import SimulatedPlant
from bridges.sim.utilities import UTILITY_PLANTS, UtilityPlant
from model.config import SimSection
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl


def _source(utility: UtilityPlant, endpoint: tuple[str, int]) -> PlcSource:
    config = utility.bridge(endpoint, utility.machine, MACHINE_METRICS[utility.machine])
    assert (config.node_id, config.edge.group) == (utility_node(utility.machine), "acme-dallas")
    source = build_source(config, network_clients(BrokerUrl(port=1)))  # PLC bridges never use the MQTT clients
    assert isinstance(source, PlcSource)
    return source


def test_every_utility_is_in_the_demo_once() -> None:
    assert [u.machine for u in UTILITY_PLANTS] == list(UTILITY_MACHINES)
    assert [u.kind for u in UTILITY_PLANTS] == ["s7", "ethernetip", "slmp", "fins"]


@pytest.mark.parametrize("utility", UTILITY_PLANTS, ids=lambda u: u.machine)
async def test_the_bridge_reads_what_the_plc_serves_and_writes_reach_the_model(utility: UtilityPlant) -> None:
    model = PlantModel(seed=9, lines=())
    model.advance(60_000)
    machine = utility.machine
    setpoint = next(m.name for m in MACHINE_METRICS[machine] if m.name.startswith("Setpoint/"))
    async with utility.server("127.0.0.1") as server:
        await server.update(model.snapshot())
        source = _source(utility, server.endpoint)
        async with source:
            await source.write(machine, setpoint, 5.5)
            await source.write(machine, "Command/Run", False)
        writes = {(w.machine, w.metric, w.value) for w in await server.collect_writes()}
    assert writes == {(machine, setpoint, 5.5), (machine, "Command/Run", False)}


async def test_an_slmp_write_landing_during_an_update_is_not_overwritten() -> None:
    # the SLMP plant updates its PLC through a client (awaits that yield), so a bridge's write can land
    # between the sim's collect_writes and the update: the update must not put the old setpoint back
    utility = next(u for u in UTILITY_PLANTS if u.kind == "slmp")
    snapshot = PlantModel(seed=9, lines=()).snapshot()
    async with utility.server("127.0.0.1") as server:
        await server.update(snapshot)
        assert await server.collect_writes() == []
        async with _source(utility, server.endpoint) as source:
            await source.write("chiller", "Setpoint/Temperature", 6.5)
        await server.update(snapshot)  # the model has not seen the write yet
        writes = [(w.metric, w.value) for w in await server.collect_writes()]
    assert writes == [("Setpoint/Temperature", 6.5)]


async def test_a_write_landing_after_the_read_back_before_the_step_reaches_the_model_and_stays() -> None:
    # a refresh reads the client writes before the model's step, then updates every server; a write that lands
    # in between (while the model steps, or while an SLMP round trip yields) is neither overwritten nor lost
    async with SimulatedPlant(settings=SimSection(seed=9)) as sim:
        assert await sim.apply_client_writes() == []
        setpoints = {}
        for utility in UTILITY_PLANTS:
            setpoint = next(m.name for m in MACHINE_METRICS[utility.machine] if m.name.startswith("Setpoint/"))
            setpoints[utility.machine] = setpoint.removeprefix("Setpoint/")
            async with _source(utility, sim.utility_endpoints[utility.machine]) as source:
                await source.write(utility.machine, setpoint, 5.5)
        sim.model.advance(1_000)
        await sim.publish()
        machines = sim.model.snapshot().machines
        assert {machine: machines[machine].setpoints[name] for machine, name in setpoints.items()} == dict.fromkeys(
            setpoints, 5.5
        )
        assert await sim.apply_client_writes() == []  # handed over, and the PLCs hold what the model has
