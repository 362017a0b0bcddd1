"""ModbusSource over RTU: a pymodbus serial server and the bridge joined by a virtual serial cable (pty pair)."""

from __future__ import annotations

import contextlib

from bridges.modbus import ModbusSource
from bridges.source import Samples
from model.envelope import Quality
from tests.bridges.modbus.servers import PtyPair, bridge_config, rtu_server, sim_device
from tests.bridges.modbus.streams import next_event, samples_of, values


async def test_rtu_reads_and_writes_over_a_virtual_serial_pair() -> None:
    registers = [
        {"name": "temp", "table": "input", "address": 0, "type": "float32", "order": "CDAB"},
        {"name": "setpoint", "table": "holding", "address": 4, "type": "int32", "writable": True},
        {"name": "run", "table": "coil", "address": 3, "type": "bool", "writable": True},
    ]
    device = sim_device(unit=7, input_={0: [0x0000, 0x42C8]}, holding={4: [0, 0]}, coils={0: [0] * 8})
    with PtyPair() as cable:
        async with rtu_server(device, cable.a, baudrate=115200):
            config = bridge_config(
                {
                    "id": "drive",
                    "transport": "rtu",
                    "serial": {"port": cable.b, "baudrate": 115200},
                    "unit_id": 7,
                    "timeout_s": 0.5,
                    "poll_groups": {"default": 0.05},
                    "registers": registers,
                }
            )
            async with ModbusSource(config=config) as source, contextlib.aclosing(source.events()) as stream:
                first = await next_event(stream, samples_of("drive"))
                assert values(first) == {"temp": 100.0, "setpoint": 0, "run": False}
                await source.write("drive", "setpoint", -70000)
                await source.write("drive", "run", True)
                later = await next_event(
                    stream, lambda e: values(e) == {"temp": 100.0, "setpoint": -70000, "run": True}
                )
    assert isinstance(later, Samples)
    assert {sample.quality for sample in later.samples} == {Quality.good}
