"""``uns sim``: the simulated demo plant as a long-lived part (Modbus, OPC UA, the utilities' PLCs, model clock)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Self

from bridges.sim.demo import demo_bridges
from bridges.sim.layout import ModbusEndpoint, SimEndpoints
from bridges.sim.modbus_plant import ClientWrite, ModbusPlant
from bridges.sim.opcua_plant import OpcUaPlant
from bridges.sim.plant import PlantModel
from bridges.sim.rates import REFRESH_S
from bridges.sim.utilities import UTILITY_PLANTS, UtilityServer
from bridges.source import PollClock
from model.bridges import BridgeConfig
from model.config import SimSection

__all__ = ["SimulatedPlant"]

log = logging.getLogger(__name__)

_MAX_CATCH_UP_MS = 60_000
"""A loop that stalled longer than this skips ahead instead of replaying every tick at once."""


class SimulatedPlant:
    """The demo plant: a process model advanced in real time x ``settings.speed``, served by its simulated PLCs.

    ``async with SimulatedPlant(settings=...) as sim:`` starts the servers (ports chosen once
    entered), ``sim.bridge_configs()`` gives the bridges that read them, ``await sim.run()``
    runs the clock until cancelled. Values clients write into ``Setpoint/...`` or
    ``Command/Run`` act on the model. The utilities' PLCs (S7, SLMP, ...) listen on free ports.

    Args:
        settings: Seed, bind address, ports and speed.
        period_s: Real seconds between updates of the servers (``REFRESH_S`` unless given).
    """

    name = "sim"

    def __init__(self, *, settings: SimSection, period_s: float = REFRESH_S) -> None:
        self._settings = settings
        self._period_s = period_s
        self.model = PlantModel(seed=settings.seed)
        self.modbus = ModbusPlant(bind=settings.bind, first_port=settings.modbus_port)
        self.opcua = OpcUaPlant(bind=settings.bind, port=settings.opcua_port)
        self.utilities: dict[str, UtilityServer] = {u.machine: u.server(settings.bind) for u in UTILITY_PLANTS}
        self._stack = contextlib.AsyncExitStack()

    @property
    def modbus_endpoints(self) -> Mapping[str, ModbusEndpoint]:
        """Bottling machine id -> its simulated PLC."""
        return self.modbus.endpoints

    @property
    def opcua_endpoint(self) -> str:
        """The packaging OPC UA server's endpoint URL."""
        return self.opcua.endpoint

    @property
    def utility_endpoints(self) -> Mapping[str, tuple[str, int]]:
        """Utility machine id -> (host, port) of its simulated PLC."""
        return {machine: server.endpoint for machine, server in self.utilities.items()}

    @property
    def endpoints(self) -> SimEndpoints:
        """Every server, for ``demo_bridges``."""
        return SimEndpoints(modbus=self.modbus_endpoints, opcua=self.opcua_endpoint, utilities=self.utility_endpoints)

    def bridge_configs(self) -> list[BridgeConfig]:
        """The demo bridges, reading this plant's servers."""
        return demo_bridges(self.endpoints)

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.modbus)
            await stack.enter_async_context(self.opcua)
            for server in self.utilities.values():
                await stack.enter_async_context(server)
            await self.publish()
            self._stack = stack.pop_all()
        utilities = "".join(f", {kind} {machine} {host}:{port}" for kind, machine, (host, port) in self._utility_list())
        log.info(
            "simulated plant ready (seed %d, speed x%g): modbus %s, opcua %s%s",
            self._settings.seed,
            self._settings.speed,
            ", ".join(str(endpoint) for endpoint in self.modbus_endpoints.values()),
            self.opcua_endpoint,
            utilities,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    def _utility_list(self) -> list[tuple[str, str, tuple[str, int]]]:
        return [(u.kind, u.machine, self.utilities[u.machine].endpoint) for u in UTILITY_PLANTS]

    async def publish(self) -> None:
        """Write the model's current values into every server.

        Each server's client writes are taken just before its update (no await that yields in
        between for the in-process servers): a write that landed while the servers before it were
        updated would otherwise be overwritten by this update and lost.
        """
        snapshot = self.model.snapshot()
        for server in self._servers():
            if self._apply(await server.collect_writes()):
                snapshot = self.model.snapshot()
            await server.update(snapshot)

    async def apply_client_writes(self) -> list[ClientWrite]:
        """Hand values clients wrote to the model; returns them."""
        writes: list[ClientWrite] = []
        for server in self._servers():
            writes += await server.collect_writes()
        self._apply(writes)
        return writes

    def _servers(self) -> list[UtilityServer | ModbusPlant | OpcUaPlant]:
        return [self.modbus, self.opcua, *self.utilities.values()]

    def _apply(self, writes: list[ClientWrite]) -> list[ClientWrite]:
        for write in writes:
            log.info("simulated %s: client wrote %s = %r", write.machine, write.metric, write.value)
            try:
                if write.metric == "Setpoint/Speed":
                    self.model.set_speed_setpoint(write.machine, float(write.value))
                elif write.metric.startswith("Setpoint/"):  # a utility's process setpoint
                    self.model.set_setpoint(write.machine, write.metric.removeprefix("Setpoint/"), float(write.value))
                elif write.metric == "Command/Run":
                    self.model.set_run_enabled(write.machine, bool(write.value))
            except ValueError as exc:  # a PLC keeps running whatever a client writes; the model ignores it
                log.warning(
                    "simulated %s: ignored the write of %s = %r: %s", write.machine, write.metric, write.value, exc
                )
        return writes

    async def run(self) -> None:
        """Advance the model in real time x speed and refresh the servers every ``period_s``, until cancelled."""
        loop = asyncio.get_running_loop()
        start, base_ms = loop.time(), self.model.time_ms
        clock = PollClock(self._period_s)
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():
                # a PLC client library's asyncio.wait_for (Python 3.11) may swallow a cancel that races
                # an answer (the SLMP plant writes through one): stop anyway, or `uns up` never exits
                raise asyncio.CancelledError
            await self.apply_client_writes()
            target_ms = base_ms + int((loop.time() - start) * self._settings.speed * 1000)
            if target_ms - self.model.time_ms > _MAX_CATCH_UP_MS:
                log.warning("simulated plant fell %d ms behind; skipping ahead", target_ms - self.model.time_ms)
                start, base_ms = loop.time(), self.model.time_ms
                target_ms = base_ms
            self.model.advance_to(target_ms)
            await self.publish()
            # a fixed rate as the bridges poll, not a fixed pause: the refresh's own time must not stretch
            # the period (a slower refresh than the clients' polls would show them fewer changes)
            await clock.wait()
