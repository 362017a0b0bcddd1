"""One timer per Modbus request: pymodbus's own deadline, no second guard of ours beside it (an idle hub's wake-ups)."""

from __future__ import annotations

import asyncio

from bridges.modbus.link import DeviceLink
from bridges.modbus.plan import ReadRequest, Span
from tests.bridges.modbus.servers import TcpServer, bridge_config, sim_device
from tests.fixtures.timers import timers_by_task


async def test_each_read_schedules_one_timer_and_still_reads_the_value() -> None:
    async with TcpServer(sim_device(holding={0: [41, 42]})) as server:
        config = bridge_config(
            {
                "id": "plc",
                "port": server.port,
                "registers": [{"name": "v", "table": "holding", "address": 0, "type": "uint32"}],
            }
        )
        link = DeviceLink(bridge="plc", device=config.devices[0])
        await link.connect()
        request = ReadRequest(table="holding", address=0, count=2, spans=(Span("v", "holding", 0, 2),))

        async def reads() -> list[list[int] | object]:
            return [await link.read(request) for _ in range(10)]

        try:
            with timers_by_task() as timers:
                answers = await asyncio.create_task(reads(), name="modbus-reads")
        finally:
            link.close()
    assert answers == [[41, 42]] * 10
    assert timers["modbus-reads"] == 10, timers  # was 20: our guard's timer beside pymodbus's on every read
