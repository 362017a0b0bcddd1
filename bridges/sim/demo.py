"""Bridge configs that read the simulated plant: Modbus for bottling, OPC UA for packaging, a PLC driver per utility."""

from __future__ import annotations

from bridges.sim.layout import (
    BOTTLING_NODE,
    GROUP,
    MACHINE_METRICS,
    OPCUA_MACHINES,
    PACKAGING_NODE,
    SimEndpoints,
    modbus_order,
    modbus_slots,
    opcua_node_id,
)
from bridges.sim.rates import OPCUA_SAMPLING_MS, poll_groups
from bridges.sim.utilities import UTILITY_PLANTS
from model.bridges import (
    BridgeConfig,
    EdgeNodeConfig,
    ModbusBridgeConfig,
    ModbusDevice,
    ModbusRegister,
    OpcUaBridgeConfig,
    OpcUaDevice,
    OpcUaNode,
)

__all__ = ["demo_bridges"]


def _edge() -> EdgeNodeConfig:
    return EdgeNodeConfig(group=GROUP, primary_host_id="uns-hub")


def _modbus(endpoints: SimEndpoints) -> ModbusBridgeConfig:
    devices = []
    for machine, endpoint in endpoints.modbus.items():
        registers = [
            ModbusRegister(
                name=slot.metric.name,
                table=slot.table,
                address=slot.address,
                type=slot.type,
                scale=slot.scale,
                unit=slot.metric.unit,
                poll=slot.metric.poll,
                writable=slot.metric.writable,
                deadband=slot.metric.deadband,
            )
            for slot in modbus_slots(machine)
        ]
        devices.append(
            ModbusDevice(
                id=machine,
                host=endpoint.host,
                port=endpoint.port,
                unit_id=endpoint.unit_id,
                order=modbus_order(machine),
                poll_groups=poll_groups(),
                registers=registers,
            )
        )
    return ModbusBridgeConfig(name=BOTTLING_NODE, edge=_edge(), devices=devices)


def _opcua(endpoint: str) -> OpcUaBridgeConfig:
    devices = [
        OpcUaDevice(
            id=machine,
            nodes=[
                OpcUaNode(
                    name=metric.name,
                    node_id=opcua_node_id(machine, metric.name),
                    sampling_interval_ms=OPCUA_SAMPLING_MS,
                    datatype=metric.datatype,
                    unit=metric.unit,
                    writable=metric.writable,
                    deadband=metric.deadband,
                )
                for metric in MACHINE_METRICS[machine]
            ],
        )
        for machine in OPCUA_MACHINES
    ]
    return OpcUaBridgeConfig(
        name=PACKAGING_NODE, edge=_edge(), endpoint=endpoint, publishing_interval_ms=OPCUA_SAMPLING_MS, devices=devices
    )


def demo_bridges(endpoints: SimEndpoints) -> list[BridgeConfig]:
    """The bridges of the demo plant, reading exactly the simulated servers at ``endpoints``.

    Sparkplug group ``acme-dallas``; edge nodes ``modbus-bottling`` (one device per bottling
    machine, polled in a fast and a slow group), ``opcua-packaging`` (every packaging variable
    subscribed, sampled and published every second) and one ``<kind>-utilities`` per utility machine served at
    ``endpoints.utilities`` (its driver's ``demo_bridge``). Device ids are the plant's cell ids. Intervals
    and deadbands: ``bridges.sim.rates``.
    """
    utilities = [
        utility.bridge(endpoints.utilities[utility.machine], utility.machine, MACHINE_METRICS[utility.machine])
        for utility in UTILITY_PLANTS
        if utility.machine in endpoints.utilities
    ]
    return [_modbus(endpoints), _opcua(endpoints.opcua), *utilities]
