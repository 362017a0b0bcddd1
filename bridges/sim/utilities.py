"""The utilities area's simulated PLCs: which driver's plant serves each machine, and the bridge that reads it.

Each PLC driver provides ``bridges/sim/<kind>_plant.py`` with a plant class (a server for one
machine on a free port) and ``demo_bridge(endpoint, machine, metrics)``; this table puts them
together so ``service`` starts the servers and ``demo`` reads them. A machine whose driver is not
here is simply not part of the demo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol, Self

from bridges.sim import ethernetip_plant, fins_plant, s7_plant, slmp_plant
from bridges.sim.layout import Metric
from bridges.sim.modbus_plant import ClientWrite
from bridges.sim.plant import PlantSnapshot
from model.bridges import BridgeConfig

__all__ = ["UTILITY_PLANTS", "UtilityPlant", "UtilityServer"]


class UtilityServer(Protocol):
    """One machine's simulated PLC, as every ``<kind>_plant`` class provides it."""

    @property
    def endpoint(self) -> tuple[str, int]:
        """(host, port) it listens on; the real port once entered."""
        ...

    async def __aenter__(self) -> Self:
        """Start listening."""
        ...

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop listening and drop every connection."""
        ...

    async def update(self, snapshot: PlantSnapshot) -> None:
        """Write the machine's current values into the PLC's memory."""
        ...

    async def collect_writes(self) -> list[ClientWrite]:
        """What clients wrote into the machine's writable metrics since the last ``update``."""
        ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UtilityPlant:
    """A utility machine, the server of its PLC, and the bridge config that reads it."""

    machine: str
    kind: str
    server: Callable[[str], UtilityServer]
    """Bind address -> the machine's PLC on a free port (not started)."""
    bridge: Callable[[tuple[str, int], str, Sequence[Metric]], BridgeConfig]
    """(endpoint, machine, metrics) -> the bridge of edge node ``<kind>-utilities``."""


UTILITY_PLANTS: tuple[UtilityPlant, ...] = (
    UtilityPlant(
        machine="compressor",
        kind="s7",
        server=lambda bind: s7_plant.S7Plant(bind=bind, port=0),
        bridge=s7_plant.demo_bridge,
    ),
    UtilityPlant(
        machine="boiler",
        kind="ethernetip",
        server=lambda bind: ethernetip_plant.EthernetIpPlant(bind=bind, port=0),
        bridge=ethernetip_plant.demo_bridge,
    ),
    UtilityPlant(
        machine="chiller",
        kind="slmp",
        server=lambda bind: slmp_plant.SlmpPlant(bind=bind, port=0),
        bridge=slmp_plant.demo_bridge,
    ),
    UtilityPlant(
        machine="pump",
        kind="fins",
        server=lambda bind: fins_plant.FinsPlant(bind=bind, port=0),
        bridge=fins_plant.demo_bridge,
    ),
)
"""The utilities in the demo, in the order ``layout.UTILITY_MACHINES`` lists them."""
