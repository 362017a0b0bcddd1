"""Fixtures for bridge tests: the simulated plant's real servers on free loopback ports.

Register with ``pytest_plugins = [..., "tests.bridges.sim.fixtures"]`` in ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest_asyncio

from bridges.sim.modbus_plant import ModbusPlant
from bridges.sim.opcua_plant import OpcUaPlant
from bridges.sim.plant import PlantModel
from bridges.sim.service import SimulatedPlant
from model.config import SimSection

__all__ = ["modbus_plant", "opcua_plant", "sim_plant"]


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


@pytest_asyncio.fixture
async def sim_plant() -> AsyncIterator[SimulatedPlant]:
    """The whole simulated plant, running at x10 (``sim_plant.bridge_configs()`` reads it).

    Ten times real time, so the demo bridges' deadbands (``bridges.sim.rates``) let data through as
    often as tests of data need: at x1 a steady packaging line sends a DDATA every few seconds.
    """
    async with SimulatedPlant(settings=SimSection(seed=42, speed=10.0)) as plant:
        task = asyncio.create_task(plant.run(), name="tests.sim_plant")
        try:
            yield plant
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
