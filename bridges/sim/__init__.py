"""The simulated demo plant: a process model served by real Modbus TCP and OPC UA servers.

The names below are imported on first use (PEP 562): ``bridges.sim.rates`` or ``bridges.sim.plant`` (what
``uns up --no-demo`` reads for the demo's settings) must not load every simulated server's library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model.lazy import lazy_names

if TYPE_CHECKING:
    from bridges.sim.demo import demo_bridges
    from bridges.sim.layout import ModbusEndpoint, SimEndpoints
    from bridges.sim.modbus_plant import ClientWrite, ModbusPlant
    from bridges.sim.opcua_plant import OpcUaPlant
    from bridges.sim.plant import MachineState, PlantModel, PlantSnapshot
    from bridges.sim.service import SimulatedPlant

_HOMES = {
    "ClientWrite": "bridges.sim.modbus_plant",
    "MachineState": "bridges.sim.plant",
    "ModbusEndpoint": "bridges.sim.layout",
    "ModbusPlant": "bridges.sim.modbus_plant",
    "OpcUaPlant": "bridges.sim.opcua_plant",
    "PlantModel": "bridges.sim.plant",
    "PlantSnapshot": "bridges.sim.plant",
    "SimEndpoints": "bridges.sim.layout",
    "SimulatedPlant": "bridges.sim.service",
    "demo_bridges": "bridges.sim.demo",
}
"""Where each name of the package lives."""


__getattr__ = lazy_names(__name__, _HOMES, globals())

__all__ = [
    "ClientWrite",
    "MachineState",
    "ModbusEndpoint",
    "ModbusPlant",
    "OpcUaPlant",
    "PlantModel",
    "PlantSnapshot",
    "SimEndpoints",
    "SimulatedPlant",
    "demo_bridges",
]
