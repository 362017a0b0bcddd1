"""The shared simulator fixtures start and serve (they are registered here for this folder's tests)."""

from __future__ import annotations

from asyncua.client.client import Client
from pymodbus.client import AsyncModbusTcpClient

from bridges.sim.layout import opcua_node_id
from tests.bridges.sim.fixtures import modbus_plant, opcua_plant

__all__ = ["modbus_plant", "opcua_plant"]


async def test_modbus_plant_fixture_serves(modbus_plant):
    endpoint = modbus_plant.endpoints["rinser"]
    client = AsyncModbusTcpClient(endpoint.host, port=endpoint.port, timeout=2, retries=0)
    assert await client.connect()
    try:
        state = await client.read_input_registers(0, count=2, device_id=1)
        assert not state.isError()
        assert 1 <= state.registers[0] <= 7  # CDAB: low word first
    finally:
        client.close()


async def test_opcua_plant_fixture_serves(opcua_plant):
    async with Client(opcua_plant.endpoint, timeout=5) as client:
        assert await client.get_node(opcua_node_id("wrapper", "State")).read_value() in range(1, 8)
