"""The simulated demo plant: a process model served by real Modbus TCP and OPC UA servers."""

from bridges.sim.demo import demo_bridges
from bridges.sim.layout import ModbusEndpoint, SimEndpoints
from bridges.sim.modbus_plant import ClientWrite, ModbusPlant
from bridges.sim.opcua_plant import OpcUaPlant
from bridges.sim.plant import MachineState, PlantModel, PlantSnapshot
from bridges.sim.service import SimulatedPlant

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
