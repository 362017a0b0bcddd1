"""Fixtures for bridge tests: the simulated plant's real servers on free loopback ports.

Register with ``pytest_plugins = [..., "tests.bridges.sim.fixtures"]`` in ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

import pytest_asyncio
from pydantic import BaseModel

from bridges.sim.modbus_plant import ModbusPlant
from bridges.sim.opcua_plant import OpcUaPlant
from bridges.sim.plant import PlantModel
from bridges.sim.rates import REFRESH_S
from bridges.sim.service import SimulatedPlant
from model.config import SimSection

__all__ = ["SIM_PLANT_QUICKER", "modbus_plant", "opcua_plant", "read_quicker", "sim_plant"]

SIM_PLANT_QUICKER = 4
"""How much faster than the demo's (x10, refreshed every second) ``sim_plant`` runs and refreshes."""

_INTERVALS = frozenset({"publishing_interval_ms", "sampling_interval_ms"})  # and every poll group's
_Config = TypeVar("_Config", bound=BaseModel)


@pytest_asyncio.fixture
async def modbus_plant() -> AsyncIterator[ModbusPlant]:
    """Every bottling PLC, holding the values of seed 42 after one simulated minute (static)."""
    model = PlantModel(seed=42)
    model.advance(60_000)
    async with ModbusPlant() as plcs:
        await plcs.update(model.snapshot())
        yield plcs


@pytest_asyncio.fixture
async def opcua_plant() -> AsyncIterator[OpcUaPlant]:
    """The packaging OPC UA server, holding the values of seed 42 after one simulated minute (static)."""
    model = PlantModel(seed=42)
    model.advance(60_000)
    async with OpcUaPlant() as server:
        await server.update(model.snapshot())
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim_plant() -> AsyncIterator[SimulatedPlant]:
    """The whole simulated plant, running at x40 and refreshed four times a second (``sim_plant.bridge_configs()``).

    Each refresh moves the plant as far as the demo's x10 every second does, so the demo bridges' deadbands
    (``bridges.sim.rates``) let data through as often as tests of data need, read at a quarter of their
    intervals (``SIM_PLANT_QUICKER``): at x1 a steady packaging line sends a DDATA every few seconds.
    One per module, as starting it costs seconds (the OPC UA server's standard address space): its
    tests run in the module's event loop (``pytest.mark.asyncio(loop_scope="module")``) and only read it.
    """
    async with SimulatedPlant(
        settings=SimSection(seed=42, speed=10.0 * SIM_PLANT_QUICKER), period_s=REFRESH_S / SIM_PLANT_QUICKER
    ) as plant:
        task = asyncio.create_task(plant.run(), name="tests.sim_plant")
        try:
            yield plant
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def read_quicker(config: _Config) -> _Config:
    """A demo bridge's config (``sim_plant.bridge_configs()``) reading ``sim_plant`` at its pace: its poll groups,
    sampling and publishing intervals ``SIM_PLANT_QUICKER`` times shorter, its deadbands as they are."""
    return type(config).model_validate(_scaled(config.model_dump(), 1 / SIM_PLANT_QUICKER))


def _scaled(value: object, factor: float, key: str = "") -> object:
    if isinstance(value, dict):
        if key == "poll_groups":
            return {name: interval * factor for name, interval in value.items()}
        return {k: _scaled(v, factor, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_scaled(item, factor) for item in value]
    return value * factor if key in _INTERVALS and isinstance(value, int | float) else value
