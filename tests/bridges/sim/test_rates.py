"""How the demo reads its plant: every bridge gets the demo's poll groups and each metric's deadband, and the
deadbands hold back a steady machine's jitter but not its stops."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping

import pytest
from pydantic import BaseModel

from bridges.sim.demo import demo_bridges
from bridges.sim.layout import MACHINE_METRICS, MODBUS_MACHINES, ModbusEndpoint, SimEndpoints, metric_value
from bridges.sim.plant import MachineSnapshot, MachineState, PlantModel
from bridges.sim.rates import (
    COMMIT_S,
    FAST_POLL_S,
    REFRESH_S,
    SLOW_POLL_S,
    deadband,
    demo_commit_interval_s,
    demo_historian_section,
)
from bridges.sim.utilities import UTILITY_PLANTS
from model.bridges import AmqpBridgeConfig, ModbusDevice, OpcUaDevice, SqlBridgeConfig
from model.bridges.ethernetip import EthernetIpDevice
from model.bridges.fins import FinsDevice
from model.bridges.s7 import S7Device
from model.bridges.slmp import SlmpDevice
from model.config import HistorianSection, MesSection, Settings
from tests.exports import assert_all_is_honest


def _endpoints() -> SimEndpoints:
    modbus = {machine: ModbusEndpoint(host="127.0.0.1", port=5020 + i) for i, machine in enumerate(MODBUS_MACHINES)}
    utilities = {u.machine: ("127.0.0.1", 6000 + i) for i, u in enumerate(UTILITY_PLANTS)}
    return SimEndpoints(modbus=modbus, opcua="opc.tcp://127.0.0.1:4840/uns-hub/sim/", utilities=utilities)


@pytest.mark.parametrize(
    ("machine", "metric", "interval_s", "band"),
    [
        ("filler", "Speed", 1.0, 12.0),  # 3 % of its 400 bpm
        ("filler", "CycleTime", 1.0, 0.0045),  # 3 % of 0.15 s
        ("filler", "Temperature", 5.0, 0.33),  # 3 sigma of 5 s of noise 0.05/sqrt(s): slow, it barely moves
        ("filler", "Temperature", 1.0, 0.15),
        ("capper", "Torque", 5.0, 0.11),  # a 0.5 s lag forgets between reads: 3 x sqrt(2) x its spread
        ("filler", "Energy", 5.0, 0.1),
        ("compressor", "Power", 1.0, 2.2),  # 3 % of 75 kW
        ("compressor", "Counters/RunHours", 5.0, 0.01),
        ("boiler", "Flow", 5.0, 97.0),
        ("filler", "State", 1.0, 0.0),  # states, counters, flags, setpoints and commands: every change
        ("filler", "Production/GoodCount", 1.0, 0.0),
        ("filler", "PartDone", 1.0, 0.0),
        ("filler", "Setpoint/Speed", 1.0, 0.0),
        ("compressor", "Setpoint/Pressure", 1.0, 0.0),
        ("compressor", "Counters/Starts", 5.0, 0.0),
        ("no-such-machine", "Speed", 1.0, 0.0),
    ],
)
def test_deadbands_are_round_figures_from_the_machine(
    machine: str, metric: str, interval_s: float, band: float
) -> None:
    assert deadband(machine, metric, interval_s) == band


def test_every_demo_bridge_polls_fast_and_slow_groups_with_each_metric_s_deadband() -> None:
    assert (FAST_POLL_S, SLOW_POLL_S, REFRESH_S) == (1.0, 5.0, 1.0)
    configs = demo_bridges(_endpoints())
    assert len(configs) == 2 + len(UTILITY_PLANTS)
    with_band = 0
    for config in configs:
        assert not isinstance(config, AmqpBridgeConfig | SqlBridgeConfig)  # they have no devices
        for device in config.devices:
            if isinstance(device, OpcUaDevice):
                tags = [(n.name, n.deadband) for n in device.nodes]
                assert {n.sampling_interval_ms for n in device.nodes} == {1000.0}
            else:
                assert isinstance(device, ModbusDevice | S7Device | EthernetIpDevice | SlmpDevice | FinsDevice)
                assert device.poll_groups == {"fast": 1.0, "slow": 5.0}, config.node_id
                items = device.registers if isinstance(device, ModbusDevice) else device.tags
                tags = [(t.name, t.deadband) for t in items]
            polls = {"fast": FAST_POLL_S, "slow": SLOW_POLL_S}
            wanted = [(m.name, deadband(device.id, m.name, polls[m.poll])) for m in MACHINE_METRICS[device.id]]
            assert tags == wanted, config.node_id
            with_band += sum(band > 0 for _name, band in tags)
    assert with_band == 61  # every analog that jitters or counts up by itself, on 13 machines


def _sent(samples: list[float], band: float) -> list[int]:
    """Report by exception as the edge engine does it: the indexes of the samples sent."""
    sent, last = [0], samples[0]
    for index, value in enumerate(samples[1:], start=1):
        if abs(value - last) > band:
            sent.append(index)
            last = value
    return sent


@functools.cache
def _an_hour() -> tuple[Mapping[str, MachineSnapshot], ...]:
    """Seed 42's plant for an hour, read every second: simulated once for the cases below, which read it at their
    bridge's interval (the model gives the same values at the same time however its advances are sliced)."""
    model = PlantModel(seed=42)
    reads = []
    for _ in range(3600):
        model.advance(1000)
        reads.append(model.snapshot().machines)
    return tuple(reads)


@pytest.mark.parametrize(("machine", "metric"), [("filler", "Speed"), ("filler", "Temperature"), ("boiler", "Power")])
def test_a_steady_machine_s_jitter_is_held_back_and_its_stops_are_sent(machine: str, metric: str) -> None:
    interval_s = FAST_POLL_S if metric != "Temperature" else SLOW_POLL_S
    every = round(interval_s)  # an hour, read as the demo bridge reads it: one in every interval_s reads
    snapshots = [machines[machine] for machines in _an_hour()[every - 1 :: every]]
    samples = [float(metric_value(snapshot, metric)) for snapshot in snapshots]
    states = [snapshot.state for snapshot in snapshots]
    sent = _sent(samples, deadband(machine, metric, interval_s))
    every_change = sum(a != b for a, b in itertools.pairwise(samples))
    assert every_change > len(samples) * 0.75  # without a deadband most reads would be sent
    assert len(sent) < every_change / 8
    if metric == "Speed":  # every stop and every restart moves the speed far past the deadband: sent on the spot
        moves = [
            i
            for i in range(1, len(states))
            if (states[i] == MachineState.RUNNING) != (states[i - 1] == MachineState.RUNNING)
        ]
        assert moves
        assert set(moves) <= set(sent)


def test_the_demo_s_historian_commits_every_two_seconds_unless_the_settings_say() -> None:
    assert HistorianSection().flush_interval_s == 0.5  # every hub's own
    assert demo_historian_section(HistorianSection()).flush_interval_s == COMMIT_S == 2.0
    assert demo_historian_section(HistorianSection(flush_interval_s=0.2)).flush_interval_s == 0.2
    from_env = Settings.model_validate({"historian": {"flush_interval_s": 0.5}})  # a YAML or UNS_HISTORIAN__ value
    assert demo_historian_section(from_env.historian).flush_interval_s == 0.5
    other = Settings.model_validate({"historian": {"batch_rows": 500}})
    assert demo_historian_section(other.historian) == other.historian.model_copy(update={"flush_interval_s": 2.0})


@pytest.mark.parametrize(
    ("section", "field"), [(HistorianSection, "flush_interval_s"), (MesSection, "commit_interval_s")]
)
def test_one_rule_for_each_demo_consumer_s_commit_interval(section: type[BaseModel], field: str) -> None:
    assert demo_commit_interval_s(section(), field) == COMMIT_S
    assert demo_commit_interval_s(section.model_validate({field: 0.5}), field) == 0.5  # the default's value, given


def test_exports() -> None:
    assert_all_is_honest("bridges.sim.rates")
