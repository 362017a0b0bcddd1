"""Which simulated machine is served how: metric names, Modbus registers, OPC UA node ids, utilities' PLCs.

Pure data, shared by the servers (``modbus_plant``, ``opcua_plant``, ``<kind>_plant``) and by the
bridge configs that read them (``demo``), so the two cannot drift apart. Metric names are the ones
declared in ``model/demo/plant.yaml``, plus a few every machine has (``FaultCode``, ``CycleTime``,
``PartDone``, and the writable ``Setpoint/Speed`` and ``Command/Run``). Utilities have
``FaultCode``, ``Power``, the counters ``Counters/Starts`` and ``Counters/RunHours``, a writable
``Setpoint/<process value>`` and ``Command/Run``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from bridges.sim.plant import MachineSnapshot
from bridges.sim.rates import deadband, poll_groups
from model.bridges.common import DatatypeName
from model.bridges.modbus import RegisterType, WordOrder

__all__ = [
    "BOTTLING_NODE",
    "GROUP",
    "MACHINE_METRICS",
    "MODBUS_MACHINES",
    "OPCUA_MACHINES",
    "OPCUA_NAMESPACE",
    "OPCUA_NAMESPACE_INDEX",
    "PACKAGING_NODE",
    "UTILITIES_PATH",
    "UTILITY_KINDS",
    "UTILITY_MACHINES",
    "FastOrSlow",
    "Metric",
    "ModbusEndpoint",
    "ModbusSlot",
    "SimEndpoints",
    "Table",
    "metric_value",
    "modbus_order",
    "modbus_slots",
    "opcua_node_id",
    "utility_node",
]

GROUP = "acme-dallas"
"""Sparkplug group of the demo plant's edge nodes."""
BOTTLING_NODE = "modbus-bottling"
PACKAGING_NODE = "opcua-packaging"
OPCUA_NAMESPACE = "urn:uns-hub:sim:packaging"
OPCUA_NAMESPACE_INDEX = 2
"""The first namespace a fresh asyncua server registers; the server checks it got this one."""

Table = Literal["coil", "discrete", "input", "holding"]
FastOrSlow = Literal["fast", "slow"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """One value a machine shows."""

    name: str
    """Sparkplug metric name."""
    datatype: DatatypeName
    unit: str | None = None
    poll: FastOrSlow = "fast"
    writable: bool = False
    deadband: float = 0.0
    """Report by exception: the smallest change the demo bridge sends (``bridges.sim.rates.deadband``)."""


def _m(name: str, datatype: DatatypeName, unit: str | None = None, poll: FastOrSlow = "fast") -> Metric:
    return Metric(name=name, datatype=datatype, unit=unit, poll=poll)


def _machine(unit: str, *declared: Metric) -> tuple[Metric, ...]:
    extras = (
        _m("FaultCode", "Int32"),
        _m("CycleTime", "Float", "s"),
        _m("PartDone", "Boolean"),
        Metric(name="Setpoint/Speed", datatype="Float", unit=unit, writable=True),
        Metric(name="Command/Run", datatype="Boolean", writable=True),
    )
    return (*declared, *extras)


_STATE = _m("State", "Int32")
_ENERGY = _m("Energy", "Double", "kWh", "slow")


def _utility(setpoint: str, unit: str, *others: tuple[str, str]) -> tuple[Metric, ...]:
    """A utility: state, fault, energy and power, its counters, process values, a setpoint and a run command."""
    return (
        _STATE,
        _m("FaultCode", "Int32"),
        _m(setpoint, "Float", unit),
        *(_m(name, "Float", others_unit, "slow") for name, others_unit in others),
        _m("Power", "Float", "kW"),
        _ENERGY,
        _m("Counters/Starts", "UInt32", None, "slow"),
        _m("Counters/RunHours", "Double", "h", "slow"),
        Metric(name=f"Setpoint/{setpoint}", datatype="Float", unit=unit, writable=True),
        Metric(name="Command/Run", datatype="Boolean", writable=True),
    )


def _counts(unit: str, scrap: bool = True) -> tuple[Metric, ...]:
    good = _m("Production/GoodCount", "UInt32", unit)
    return (good, _m("Production/ScrapCount", "UInt32", unit)) if scrap else (good,)


_FILLER = _machine(
    "bpm",
    _m("Temperature", "Float", "degC", "slow"),
    _m("Pressure", "Float", "bar", "slow"),
    _m("Speed", "Float", "bpm"),
    _m("Level", "Float", "%", "slow"),
    _ENERGY,
    *_counts("bottles"),
    _STATE,
)
_CAPPER = _machine("bpm", _m("Torque", "Float", "N.m", "slow"), _m("Speed", "Float", "bpm"), _ENERGY,
                   *_counts("bottles"), _STATE)  # fmt: skip


def _with_deadbands(machines: Mapping[str, tuple[Metric, ...]]) -> Mapping[str, tuple[Metric, ...]]:
    """Each machine's metrics with their deadbands, which depend on the machine (its nominal rate, its noise)."""
    return MappingProxyType(
        {
            machine: tuple(
                dataclasses.replace(m, deadband=deadband(machine, m.name, poll_groups()[m.poll])) for m in metrics
            )
            for machine, metrics in machines.items()
        }
    )


MACHINE_METRICS: Mapping[str, tuple[Metric, ...]] = _with_deadbands(
    {
        "filler": _FILLER,
        "capper": _CAPPER,
        "labeler": _machine(
            "bpm",
            _m("Speed", "Float", "bpm"),
            _m("Temperature", "Float", "degC", "slow"),
            _ENERGY,
            *_counts("bottles", scrap=False),
            _STATE,
        ),
        "rinser": _machine(
            "bpm",
            _m("Temperature", "Float", "degC", "slow"),
            _m("Pressure", "Float", "bar", "slow"),
            _m("Flow", "Float", "l/min", "slow"),
            _ENERGY,
            _STATE,
        ),
        "filler2": _FILLER,
        "capper2": _CAPPER,
        "case-packer": _machine("cpm", _m("Speed", "Float", "cpm"), _ENERGY, *_counts("cases"), _STATE),
        "palletizer": _machine("cpm", _m("Speed", "Float", "cpm"), _ENERGY, *_counts("pallets", scrap=False), _STATE),
        "wrapper": _machine("ppm", _ENERGY, *_counts("pallets", scrap=False), _STATE),
        "compressor": _utility("Pressure", "bar", ("Temperature", "degC"), ("Flow", "m3/min")),
        "boiler": _utility("Temperature", "degC", ("Pressure", "bar"), ("Flow", "kg/h")),
        "chiller": _utility("Temperature", "degC", ("Pressure", "bar"), ("Flow", "m3/h")),
        "pump": _utility("Flow", "m3/h", ("Pressure", "bar"), ("Temperature", "degC")),
    }
)
"""Every simulated machine (= Sparkplug device = plant cell id) and the metrics it shows."""

MODBUS_MACHINES = ("filler", "capper", "labeler", "rinser", "filler2", "capper2")
"""Bottling: one Modbus TCP server per machine (its own PLC), unit id 1, in this port order."""
OPCUA_MACHINES = ("case-packer", "palletizer", "wrapper")
"""Packaging: one OPC UA server for the whole line."""
UTILITY_MACHINES = ("compressor", "boiler", "chiller", "pump")
"""Utilities: each on its own PLC of another make, read by its own edge node."""
UTILITY_KINDS: Mapping[str, str] = MappingProxyType(
    {"compressor": "s7", "boiler": "ethernetip", "chiller": "slmp", "pump": "fins"}
)
"""Utility machine -> the bridge ``kind`` of its PLC (S7-1500, ControlLogix, iQ-R, NJ)."""
UTILITIES_PATH = "acme/dallas/utilities/powerhouse"
"""The utilities line's equipment path; its cells are the utility machines."""


def utility_node(machine: str) -> str:
    """The edge node that reads a utility machine's PLC: ``<kind>-utilities``."""
    return f"{UTILITY_KINDS[machine]}-utilities"


def metric_value(snapshot: MachineSnapshot, name: str) -> float | int | bool:
    """The value of metric ``name`` in a machine's snapshot."""
    match name:
        case "State":
            return int(snapshot.state)
        case "FaultCode":
            return snapshot.fault_code
        case "Production/GoodCount":
            return snapshot.good_count
        case "Production/ScrapCount":
            return snapshot.scrap_count
        case "Speed":
            return snapshot.speed
        case "CycleTime":
            return snapshot.cycle_time_s
        case "PartDone":
            return snapshot.part_done
        case "Energy":
            return snapshot.energy_kwh
        case "Setpoint/Speed":
            return snapshot.speed_setpoint
        case "Command/Run":
            return snapshot.run_enabled
        case "Power":
            return snapshot.power_kw
        case "Counters/Starts":
            return snapshot.starts
        case "Counters/RunHours":
            return snapshot.run_hours
    try:
        if name.startswith("Setpoint/"):
            return snapshot.setpoints[name.removeprefix("Setpoint/")]
        return snapshot.process[name]
    except KeyError:
        raise ValueError(f"no metric {name!r} in the machine model") from None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModbusSlot:
    """Where and how one metric sits in a simulated PLC."""

    metric: Metric
    table: Table
    address: int
    type: RegisterType
    scale: float = 1.0

    @property
    def size(self) -> int:
        """Registers (or bits) it takes."""
        return {"float64": 4, "int64": 4, "uint64": 4, "int32": 2, "uint32": 2, "float32": 2}.get(self.type, 1)


# the same address for a metric on every PLC, as a plant standardising its PLC programs would
_MODBUS_MAP: Mapping[str, tuple[Table, int, RegisterType, float]] = MappingProxyType(
    {
        "State": ("input", 0, "int32", 1.0),
        "FaultCode": ("input", 2, "uint16", 1.0),
        "Production/GoodCount": ("input", 4, "uint32", 1.0),
        "Production/ScrapCount": ("input", 6, "uint32", 1.0),
        "Speed": ("input", 8, "float32", 1.0),
        "CycleTime": ("input", 10, "uint16", 0.001),
        "Temperature": ("input", 20, "int16", 0.1),
        "Pressure": ("input", 22, "float32", 1.0),
        "Level": ("input", 24, "uint16", 0.1),
        "Torque": ("input", 26, "float32", 1.0),
        "Flow": ("input", 28, "float32", 1.0),
        "Energy": ("input", 30, "float64", 1.0),
        "PartDone": ("discrete", 0, "bool", 1.0),
        "Setpoint/Speed": ("holding", 0, "float32", 1.0),
        "Command/Run": ("coil", 0, "bool", 1.0),
    }
)


def modbus_slots(machine: str) -> tuple[ModbusSlot, ...]:
    """The register map of one bottling machine's PLC."""
    slots = []
    for metric in MACHINE_METRICS[machine]:
        table, address, type_, scale = _MODBUS_MAP[metric.name]
        slots.append(ModbusSlot(metric=metric, table=table, address=address, type=type_, scale=scale))
    return tuple(slots)


def modbus_order(machine: str) -> WordOrder:
    """Word order of a PLC: line 2's older PLCs put the low word first."""
    return "CDAB" if machine in ("rinser", "filler2", "capper2") else "ABCD"


def opcua_node_id(machine: str, metric: str) -> str:
    """The string node id of a packaging metric, e.g. ``ns=2;s=wrapper/Production/GoodCount``."""
    return f"ns={OPCUA_NAMESPACE_INDEX};s={machine}/{metric}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModbusEndpoint:
    """One simulated PLC's address."""

    host: str
    port: int
    unit_id: int = 1

    def __str__(self) -> str:
        return f"modbus://{self.host}:{self.port}/{self.unit_id}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SimEndpoints:
    """Where the running simulated plant listens."""

    modbus: Mapping[str, ModbusEndpoint]
    """Bottling machine id -> its PLC."""
    opcua: str
    """The packaging OPC UA server, ``opc.tcp://host:port/...``."""
    utilities: Mapping[str, tuple[str, int]] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """Utility machine id -> (host, port) of its PLC; only the machines whose driver is in the demo."""
