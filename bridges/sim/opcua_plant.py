"""The simulated packaging line's OPC UA server (asyncua), its variables following the model.

Address space: ``Objects/Packaging/Line3/<machine>/<metric>`` where a ``/`` in a metric name
is a folder (``Production/GoodCount``), so browsing a machine yields its metric names. Every
variable has the string node id ``ns=2;s=<machine>/<metric>`` and, where it has a unit, an
``EngineeringUnits`` property. ``Setpoint/Speed`` and ``Command/Run`` are writable by clients.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Mapping, Sequence
from typing import Self

from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server
from asyncua.ua.object_ids import ObjectIds

from bridges.sim.layout import (
    MACHINE_METRICS,
    OPCUA_MACHINES,
    OPCUA_NAMESPACE,
    OPCUA_NAMESPACE_INDEX,
    Metric,
    metric_value,
    opcua_node_id,
)
from bridges.sim.modbus_plant import ClientWrite
from bridges.sim.plant import PlantSnapshot
from uns.errors import BridgeError

__all__ = ["OpcUaPlant", "stop_server"]

log = logging.getLogger(__name__)


async def stop_server(server: Server) -> None:
    """Stop an asyncua server at once: its clock task sleeps 1 s between ticks and ``stop`` would wait it out."""
    clock, server.iserver.time_task = server.iserver.time_task, None
    if clock is not None:
        clock.cancel()
        await asyncio.wait([clock])
    await server.stop()


_VARIANT: Mapping[str, ua.VariantType] = {
    "Int32": ua.VariantType.Int32,
    "UInt32": ua.VariantType.UInt32,
    "Float": ua.VariantType.Float,
    "Double": ua.VariantType.Double,
    "Boolean": ua.VariantType.Boolean,
}
_UNITS_URI = "http://www.opcfoundation.org/UA/units/un/cefact"


def _initial(metric: Metric) -> float | int | bool:
    return {"Boolean": False, "Int32": 0, "UInt32": 0}.get(metric.datatype, 0.0)


class _Written(ua.DataValue):
    """A value the plant writes and never changes afterwards: a deep copy of it is itself.

    asyncua's monitored items deep-copy every value written (in case the writer changes it in place
    later): ~60 us of the ~120 us a write cost with one subscriber, and once more per subscriber. The
    plant builds a fresh value for each write, so the copy only repeats it. Encoded and read as any
    ``DataValue``; asyncua's change detection compares its fields, not its class.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class OpcUaPlant:
    """One OPC UA server for the packaging machines, security None, anonymous access.

    Args:
        bind: Address to listen on.
        port: TCP port; 0 = a free one (``endpoint`` tells which once entered).
        machines: Which machines to serve (default: every packaging machine).
    """

    def __init__(self, *, bind: str = "127.0.0.1", port: int = 0, machines: Sequence[str] = OPCUA_MACHINES) -> None:
        self._bind = bind
        self._port = port
        self._machines = tuple(machines)
        self._server: Server | None = None
        self._nodes: dict[tuple[str, str], tuple[ua.NodeId, ua.VariantType]] = {}
        self._writable: list[tuple[str, str]] = []
        self._written: dict[tuple[str, str], float | int | bool] = {}

    @property
    def endpoint(self) -> str:
        """``opc.tcp://host:port/uns-hub/sim/`` (the real port once entered)."""
        return f"opc.tcp://{self._bind}:{self._port}/uns-hub/sim/"

    async def __aenter__(self) -> Self:
        await self._start()
        log.info("simulated OPC UA server listening on %s", self.endpoint)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop()

    async def update(self, snapshot: PlantSnapshot) -> None:
        """Write every changed value from the model into its variable."""
        if self._server is None:
            return
        now = ua.DateTime.now(datetime.UTC)
        for (machine, name), (node_id, variant) in self._nodes.items():
            value = metric_value(snapshot.machines[machine], name)
            if variant in (ua.VariantType.Float, ua.VariantType.Double):
                value = float(value)
            if self._written.get((machine, name)) == value:
                continue
            data = _Written(ua.Variant(value, variant), SourceTimestamp=now, ServerTimestamp=now)
            await self._server.write_attribute_value(node_id, data)
            self._written[(machine, name)] = value

    async def collect_writes(self) -> list[ClientWrite]:
        """Values clients wrote into writable variables since the last ``update``."""
        if self._server is None:
            return []
        writes = []
        for machine, name in self._writable:
            if (machine, name) not in self._written:
                continue
            node_id, _variant = self._nodes[(machine, name)]
            current = self._server.read_attribute_value(node_id).Value
            value = None if current is None else current.Value
            if isinstance(value, bool | int | float) and value != self._written[(machine, name)]:
                writes.append(ClientWrite(machine, name, value))
        return writes

    async def restart(self) -> None:
        """Stop the server and start a fresh one on the same port (clients see a server restart)."""
        await self._stop()
        await self._start()
        log.info("simulated OPC UA server restarted on %s", self.endpoint)

    async def remove_node(self, machine: str, metric: str) -> None:
        """Delete one variable (a revoked node: clients reading it get BadNodeIdUnknown)."""
        if self._server is None or (machine, metric) not in self._nodes:
            raise ValueError(f"no served node {opcua_node_id(machine, metric)}")
        node_id, _variant = self._nodes.pop((machine, metric))
        self._written.pop((machine, metric), None)
        await self._server.get_node(node_id).delete()

    async def _start(self) -> None:
        server = Server()
        try:
            await server.init()
            server.set_endpoint(self.endpoint)
            server.set_server_name("uns-hub simulated packaging line")
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            index = await server.register_namespace(OPCUA_NAMESPACE)
            if index != OPCUA_NAMESPACE_INDEX:
                raise RuntimeError(f"namespace {OPCUA_NAMESPACE} got index {index}, not {OPCUA_NAMESPACE_INDEX}")
            await self._build(server)
            await server.start()
        except (OSError, RuntimeError) as exc:
            raise BridgeError("sim", self.endpoint, f"OPC UA server did not start: {exc}") from exc
        if server.bserver is not None:
            self._port = server.bserver.port
        self._server = server
        self._written = {}

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await stop_server(server)

    async def _build(self, server: Server) -> None:
        ns = OPCUA_NAMESPACE_INDEX
        area = await server.nodes.objects.add_folder(_sid("packaging"), f"{ns}:Packaging")
        line = await area.add_folder(_sid("line3"), f"{ns}:Line3")
        self._nodes = {}
        self._writable = []
        for machine in self._machines:
            parent = await line.add_object(_sid(machine), f"{ns}:{machine}")
            folders: dict[str, Node] = {"": parent}
            for metric in MACHINE_METRICS[machine]:
                *path, leaf = metric.name.split("/")
                folder = await _folder(folders, machine, path)
                variant = _VARIANT[metric.datatype]
                node = await folder.add_variable(
                    opcua_node_id(machine, metric.name),
                    f"{ns}:{leaf}",
                    ua.Variant(_initial(metric), variant),
                )
                if metric.writable:
                    await node.set_writable()
                    self._writable.append((machine, metric.name))
                if metric.unit:
                    unit = ua.LocalizedText(metric.unit)
                    await node.add_property(
                        _sid(f"{machine}/{metric.name}.EngineeringUnits"),
                        "0:EngineeringUnits",
                        ua.EUInformation(NamespaceUri=_UNITS_URI, UnitId=-1, DisplayName=unit, Description=unit),
                        datatype=ObjectIds.EUInformation,
                    )
                self._nodes[(machine, metric.name)] = (node.nodeid, variant)


async def _folder(folders: dict[str, Node], machine: str, path: list[str]) -> Node:
    """The folder for a metric's ``/`` levels, created on first use."""
    key = ""
    for level in path:
        parent, key = folders[key], f"{key}/{level}" if key else level
        if key not in folders:
            folders[key] = await parent.add_folder(_sid(f"{machine}/{key}"), f"{OPCUA_NAMESPACE_INDEX}:{level}")
    return folders[key]


def _sid(name: str) -> str:
    return f"ns={OPCUA_NAMESPACE_INDEX};s={name}"
