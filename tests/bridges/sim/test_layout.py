"""The served layout: register encoding, metric names against the demo plant file, bridge configs."""

from __future__ import annotations

import math

import pytest

import bridges.sim
from bridges.sim.demo import demo_bridges
from bridges.sim.layout import (
    MACHINE_METRICS,
    MODBUS_MACHINES,
    OPCUA_MACHINES,
    UTILITY_MACHINES,
    ModbusEndpoint,
    SimEndpoints,
    metric_value,
    modbus_slots,
    utility_node,
)
from bridges.sim.modbus_plant import decode_registers, encode_registers
from bridges.sim.plant import PlantModel
from model.bridges import ModbusBridgeConfig, OpcUaBridgeConfig
from model.config import Settings
from uns.settings import load_plant


@pytest.mark.parametrize(
    ("value", "type_", "scale", "order", "words"),
    [
        (1, "int32", 1.0, "ABCD", [0x0000, 0x0001]),
        (-2, "int32", 1.0, "ABCD", [0xFFFF, 0xFFFE]),
        (0x12345678, "uint32", 1.0, "ABCD", [0x1234, 0x5678]),
        (0x12345678, "uint32", 1.0, "CDAB", [0x5678, 0x1234]),
        (0x12345678, "uint32", 1.0, "BADC", [0x3412, 0x7856]),
        (0x12345678, "uint32", 1.0, "DCBA", [0x7856, 0x3412]),
        (1.0, "float32", 1.0, "ABCD", [0x3F80, 0x0000]),
        (1.0, "float32", 1.0, "CDAB", [0x0000, 0x3F80]),
        (1.0, "float64", 1.0, "ABCD", [0x3FF0, 0, 0, 0]),
        (1.0, "float64", 1.0, "CDAB", [0, 0, 0, 0x3FF0]),
        (1.0, "float64", 1.0, "DCBA", [0, 0, 0, 0xF03F]),
        (6.37, "int16", 0.1, "ABCD", [64]),
        (-6.37, "int16", 0.1, "CDAB", [0xFFC0]),  # one register: no word to swap
        (6.37, "int16", 0.1, "BADC", [0x4000]),  # ... but its bytes swap
        (6.37, "int16", 0.1, "DCBA", [0x4000]),
        (0.15, "uint16", 0.001, "ABCD", [150]),
        (1e9, "uint16", 1.0, "ABCD", [0xFFFF]),  # clamped, not crashed
        (-5, "uint32", 1.0, "ABCD", [0, 0]),
        (math.nan, "int16", 1.0, "ABCD", [0]),
        (2**32 + 5, "uint64", 1.0, "ABCD", [0, 1, 0, 5]),
    ],
)
def test_encode_registers(value, type_, scale, order, words):
    assert encode_registers(value, type_, scale=scale, order=order) == words


@pytest.mark.parametrize("order", ["ABCD", "CDAB", "BADC", "DCBA"])
@pytest.mark.parametrize(
    ("value", "type_"), [(123456.5, "float64"), (-42.25, "float32"), (4_000_000_000, "uint32"), (-300, "int16")]
)
def test_decode_inverts_encode(order, value, type_):
    assert decode_registers(encode_registers(value, type_, order=order), type_, order=order) == value


# declared on a cell but served by another edge node bound to it: the palletizer's serial pallet scale
# (bridges/sim/serial_palletizing.py, the serial-palletizing node)
SERVED_ELSEWHERE = {"palletizer": {"Weight"}}


def test_every_declared_metric_of_every_demo_cell_is_served_under_its_exact_name():
    plant = load_plant(None)
    for machine, metrics in MACHINE_METRICS.items():
        node = "modbus-bottling" if machine in MODBUS_MACHINES else "opcua-packaging"
        node = utility_node(machine) if machine in UTILITY_MACHINES else node
        path = plant.resolve("acme-dallas", node, machine).path
        cell = plant.equipment(path)
        assert cell is not None, machine
        served = {metric.name for metric in metrics}
        declared = set(cell.metrics) - SERVED_ELSEWHERE.get(machine, set())
        assert declared <= served, f"{machine}: not served {declared - served}"
        assert served - declared <= {"FaultCode", "CycleTime", "PartDone", "Setpoint/Speed", "Command/Run"}
        for name in declared:
            assert next(m.unit for m in metrics if m.name == name) == cell.metrics[name].unit, f"{machine} {name}"


def test_every_metric_has_a_value_in_the_model():
    snapshot = PlantModel(seed=1).snapshot()
    for machine, metrics in MACHINE_METRICS.items():
        for metric in metrics:
            value = metric_value(snapshot.machines[machine], metric.name)
            assert isinstance(value, bool) == (metric.datatype == "Boolean"), f"{machine} {metric.name}"
    with pytest.raises(ValueError, match="no metric 'Viscosity'"):
        metric_value(snapshot.machines["filler"], "Viscosity")


@pytest.mark.parametrize("machine", MODBUS_MACHINES)
def test_register_maps_do_not_overlap(machine):
    taken: dict[tuple[str, int], str] = {}
    for slot in modbus_slots(machine):
        for address in range(slot.address, slot.address + slot.size):
            assert taken.setdefault((slot.table, address), slot.metric.name) == slot.metric.name


def _endpoints() -> SimEndpoints:
    modbus = {machine: ModbusEndpoint(host="127.0.0.1", port=5020 + i) for i, machine in enumerate(MODBUS_MACHINES)}
    return SimEndpoints(modbus=modbus, opcua="opc.tcp://127.0.0.1:4840/uns-hub/sim/")


def test_demo_bridges_validate_as_settings_and_name_the_demo_edge_nodes():
    configs = demo_bridges(_endpoints())
    modbus, opcua = configs
    assert isinstance(modbus, ModbusBridgeConfig)
    assert isinstance(opcua, OpcUaBridgeConfig)
    assert (modbus.node_id, opcua.node_id) == ("modbus-bottling", "opcua-packaging")
    assert {c.edge.group for c in configs} == {"acme-dallas"}
    assert {c.edge.primary_host_id for c in configs} == {"uns-hub"}
    assert [d.id for d in modbus.devices] == list(MODBUS_MACHINES)
    assert [d.id for d in opcua.devices] == list(OPCUA_MACHINES)
    assert modbus.devices[0].port == 5020
    assert {d.poll_groups["fast"] for d in modbus.devices} == {1.0}
    assert {d.poll_groups["slow"] for d in modbus.devices} == {5.0}
    assert {n.sampling_interval_ms for d in opcua.devices for n in d.nodes} == {1000.0}
    assert opcua.publishing_interval_ms == 1000.0
    # they survive a trip through the settings file format
    dumped = [config.model_dump(mode="json") for config in configs]
    settings = Settings.model_validate({"bridges": dumped})
    assert settings.bridges == configs


def test_fast_and_slow_poll_groups():
    modbus = demo_bridges(_endpoints())[0]
    assert isinstance(modbus, ModbusBridgeConfig)
    filler = {r.name: r for r in modbus.devices[0].registers}
    assert {n for n, r in filler.items() if r.poll == "slow"} == {"Temperature", "Pressure", "Level", "Energy"}
    assert filler["Production/GoodCount"].poll == "fast"
    assert filler["State"].poll == "fast"
    assert {n for n, r in filler.items() if r.writable} == {"Setpoint/Speed", "Command/Run"}


def test_package_all_is_honest():
    for name in bridges.sim.__all__:
        assert hasattr(bridges.sim, name), name


def test_served_machines_cover_the_demo():
    served = [*MODBUS_MACHINES, *OPCUA_MACHINES, *UTILITY_MACHINES]
    assert sorted(served) == sorted(PlantModel(seed=0).machine_ids)
    assert len(set(served)) == len(served)


def test_each_utility_sits_in_the_utilities_area_on_its_own_edge_node():
    plant = load_plant(None)
    nodes = [utility_node(machine) for machine in UTILITY_MACHINES]
    setpoints = {"compressor": "Pressure", "boiler": "Temperature", "chiller": "Temperature", "pump": "Flow"}
    assert nodes == ["s7-utilities", "ethernetip-utilities", "slmp-utilities", "fins-utilities"]
    for machine, node in zip(UTILITY_MACHINES, nodes, strict=True):
        cell = f"acme/dallas/utilities/powerhouse/{machine}"
        assert plant.resolve("acme-dallas", node, machine) == plant.resolve("acme-dallas", node)
        assert plant.resolve("acme-dallas", node, machine).path == cell
        metrics = {m.name: m for m in MACHINE_METRICS[machine]}
        assert {"State", "FaultCode", "Energy", "Power", "Counters/Starts", "Counters/RunHours", "Command/Run"} <= set(
            metrics
        )
        assert [name for name, m in metrics.items() if m.writable] == [f"Setpoint/{setpoints[machine]}", "Command/Run"]
        assert {"Pressure", "Temperature", "Flow"} <= set(metrics)
