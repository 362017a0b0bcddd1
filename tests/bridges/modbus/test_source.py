"""ModbusSource against real pymodbus TCP servers: decoding, coalescing, poll groups, tags, writes."""

from __future__ import annotations

import contextlib
import time
from typing import Literal

import pytest
from pymodbus.client import AsyncModbusTcpClient

from bridges.modbus import ModbusSource
from bridges.modbus.codec import ORDERS, Kind, Order
from bridges.source import Samples
from model.envelope import Quality
from tests.bridges.modbus.servers import Requests, TcpServer, bridge_config, sim_device
from tests.bridges.modbus.streams import next_event, samples_of, values
from uns.errors import BridgeError, DeviceUnreachable, ReadError
from uns.sparkplug import DataType

_DT = AsyncModbusTcpClient.DATATYPE
_NUMERIC: dict[str, tuple[AsyncModbusTcpClient.DATATYPE, int | float]] = {
    "int16": (_DT.INT16, -12345),
    "uint16": (_DT.UINT16, 54321),
    "int32": (_DT.INT32, -123456789),
    "uint32": (_DT.UINT32, 3456789012),
    "int64": (_DT.INT64, -(2**62) - 12345),
    "uint64": (_DT.UINT64, 2**64 - 2),
    "float32": (_DT.FLOAT32, -1234.5),
    "float64": (_DT.FLOAT64, 6.02214076e23),
}


def _reference_words(kind: str, order: Order, value: int | float | str, length: int = 4) -> list[int]:
    """Registers as a device would hold them, built by pymodbus (word order) plus a byte swap."""
    if isinstance(value, str):
        data = value.encode().ljust(2 * length, b"\x00")
        words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    else:
        word_order: Literal["big", "little"] = "little" if order in ("CDAB", "DCBA") else "big"
        words = AsyncModbusTcpClient.convert_to_registers(value, _NUMERIC[kind][0], word_order=word_order)
    if order in ("BADC", "DCBA"):
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return words


async def test_every_type_and_order_decodes_to_the_value_written() -> None:
    registers: list[dict[str, object]] = []
    holding: dict[int, list[int]] = {}
    expected: dict[str, object] = {}
    address = 0
    for kind, (_dtype, value) in _NUMERIC.items():
        for order in ORDERS:
            name = f"{kind}/{order}"
            registers.append({"name": name, "table": "holding", "address": address, "type": kind, "order": order})
            holding[address] = _reference_words(kind, order, value)
            expected[name] = value
            address += 4
    for order in ORDERS:
        name = f"string/{order}"
        registers.append(
            {"name": name, "table": "holding", "address": address, "type": "string", "length": 4, "order": order}
        )
        holding[address] = _reference_words("string", order, "PUMP-7")
        expected[name] = "PUMP-7"
        address += 4
    registers += [
        {"name": "in/float32", "table": "input", "address": 3, "type": "float32", "order": "CDAB"},
        {"name": "coil/0", "table": "coil", "address": 0, "type": "bool"},
        {"name": "coil/9", "table": "coil", "address": 9, "type": "bool"},
        {"name": "di/2", "table": "discrete", "address": 2, "type": "bool"},
        {"name": "scaled", "table": "input", "address": 10, "type": "int16", "scale": 0.1, "offset": 100},
    ]
    expected |= {"in/float32": 21.5, "coil/0": True, "coil/9": False, "di/2": True, "scaled": 99.5}
    device = sim_device(
        holding={0: [w for a in sorted(holding) for w in holding[a] + [0] * (4 - len(holding[a]))]},
        input_={0: [0, 0, 0, *_reference_words("float32", "CDAB", 21.5), 0, 0, 0, 0, 0, 0xFFFB]},
        coils={0: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]},
        discrete={0: [0, 0, 1]},
    )
    async with TcpServer(device) as server:
        config = bridge_config({"id": "plc1", "port": server.port, "max_gap": 125, "registers": registers})
        async with ModbusSource(config=config) as source, contextlib.aclosing(source.events()) as stream:
            event = await next_event(stream, samples_of("plc1"))
    assert isinstance(event, Samples)
    assert {s.quality for s in event.samples} == {Quality.good}
    got = values(event)
    assert got.keys() == expected.keys()
    for name, want in expected.items():
        assert got[name] == pytest.approx(want), name


def test_tags_declare_sparkplug_datatypes() -> None:
    kinds: list[tuple[Kind, DataType]] = [
        ("int16", DataType.Int16),
        ("uint16", DataType.UInt16),
        ("int32", DataType.Int32),
        ("uint32", DataType.UInt32),
        ("int64", DataType.Int64),
        ("uint64", DataType.UInt64),
        ("float32", DataType.Float),
        ("float64", DataType.Double),
    ]
    registers: list[dict[str, object]] = [
        {"name": kind, "table": "holding", "address": 4 * i, "type": kind} for i, (kind, _) in enumerate(kinds)
    ]
    registers += [
        {"name": "run", "table": "coil", "address": 0, "type": "bool", "writable": True},
        {"name": "label", "table": "input", "address": 0, "type": "string", "length": 8},
        {
            "name": "temp",
            "table": "input",
            "address": 8,
            "type": "int16",
            "scale": 0.1,
            "unit": "degC",
            "deadband": 0.5,
        },
    ]
    source = ModbusSource(config=bridge_config({"id": "plc1", "registers": registers}))
    tags = {tag.name: tag for tag in source.tags()}
    assert [tag.name for tag in source.tags()] == [r["name"] for r in registers]
    for kind, datatype in kinds:
        assert tags[kind].datatype == datatype
    assert tags["run"].datatype == DataType.Boolean
    assert tags["run"].writable
    assert tags["label"].datatype == DataType.String
    assert (tags["temp"].datatype, tags["temp"].unit, tags["temp"].deadband) == (DataType.Double, "degC", 0.5)
    assert tags["int32"].description == "holding 8 int32 ABCD"
    assert {tag.device for tag in tags.values()} == {"plc1"}


async def test_adjacent_registers_are_read_in_one_request() -> None:
    requests: Requests = []
    device = sim_device(holding={0: [1] * 12, 40: [7]}, coils={0: [1] * 6}, requests=requests)
    registers = [
        {"name": "h0", "table": "holding", "address": 0},
        {"name": "h1", "table": "holding", "address": 1, "type": "int32"},
        {"name": "h10", "table": "holding", "address": 10},  # gap of 7 ≤ max_gap 8: same read
        {"name": "h40", "table": "holding", "address": 40},  # too far: its own read
        {"name": "c0", "table": "coil", "address": 0, "type": "bool"},
        {"name": "c5", "table": "coil", "address": 5, "type": "bool"},
    ]
    async with TcpServer(device) as server:
        config = bridge_config({"id": "plc1", "port": server.port, "max_gap": 8, "registers": registers})
        async with ModbusSource(config=config) as source, contextlib.aclosing(source.events()) as stream:
            event = await next_event(stream, samples_of("plc1"))
    assert values(event) == {"h0": 1, "h1": 0x00010001, "h10": 1, "h40": 7, "c0": True, "c5": True}
    # (function code, address, count): coils count whole 16-bit words server-side
    assert requests[:3] == [(1, 0, 1), (3, 0, 11), (3, 40, 1)]


async def test_poll_groups_run_at_their_own_rates() -> None:
    device = sim_device(holding={0: [1, 2]})
    registers = [
        {"name": "fast", "table": "holding", "address": 0, "poll": "fast"},
        {"name": "slow", "table": "holding", "address": 1, "poll": "slow"},
    ]
    counts = {"fast": 0, "slow": 0}
    async with TcpServer(device) as server:
        config = bridge_config(
            {"id": "plc1", "port": server.port, "poll_groups": {"fast": 0.05, "slow": 0.4}, "registers": registers}
        )
        async with ModbusSource(config=config) as source, contextlib.aclosing(source.events()) as stream:
            started = time.monotonic()
            while counts["slow"] < 3:
                names = values(await next_event(stream, samples_of("plc1")))
                assert len(names) == 1  # one group per Samples
                counts[next(iter(names))] += 1
            elapsed = time.monotonic() - started
    # slow reads at 0, 0.4 and 0.8 s; fast every 50 ms in that time (17 rounds on an idle machine)
    assert 0.75 <= elapsed < 2.5
    assert counts["fast"] >= 10, counts


async def test_write_holding_registers_and_coils() -> None:
    device = sim_device(holding={0: [0] * 8}, coils={0: [0] * 4})
    registers = [
        {"name": "setpoint", "table": "holding", "address": 0, "type": "float32", "order": "CDAB", "writable": True},
        {"name": "speed", "table": "holding", "address": 2, "scale": 0.1, "writable": True},
        {"name": "name", "table": "holding", "address": 3, "type": "string", "length": 2, "writable": True},
        {"name": "start", "table": "coil", "address": 2, "type": "bool", "writable": True},
        {"name": "count", "table": "holding", "address": 6},
    ]
    async with TcpServer(device) as server:
        config = bridge_config({"id": "plc1", "port": server.port, "registers": registers})
        async with ModbusSource(config=config) as source:
            await source.write("plc1", "setpoint", 72.5)
            await source.write("plc1", "speed", 12.3)
            await source.write("plc1", "name", "AB")
            await source.write("plc1", "start", True)
            async with AsyncModbusTcpClient("127.0.0.1", port=server.port) as client:
                holding = (await client.read_holding_registers(0, count=5, device_id=1)).registers
                coils = (await client.read_coils(0, count=4, device_id=1)).bits[:4]
            assert holding == [*_reference_words("float32", "CDAB", 72.5), 123, 0x4142, 0]
            assert coils == [False, False, True, False]
            async with contextlib.aclosing(source.events()) as stream:
                got = values(await next_event(stream, samples_of("plc1")))
            assert got == {"setpoint": 72.5, "speed": pytest.approx(12.3), "name": "AB", "start": True, "count": 0}


@pytest.mark.parametrize(
    ("device", "name", "value", "error", "message"),
    [
        ("plc9", "x", 1, BridgeError, "write: no device 'plc9'"),
        ("plc1", "nope", 1, BridgeError, "device 'plc1' has no tag 'nope'"),
        ("plc1", "count", 1, BridgeError, "device plc1: count (holding 6) is not writable"),
        (
            "plc1",
            "speed",
            70000,
            BridgeError,
            "device plc1: speed (holding 2): cannot write 70000: uint16 holds 0..65535",
        ),
        ("plc1", "speed", "fast", BridgeError, "speed (holding 2): cannot write 'fast': uint16 needs a number"),
        ("plc1", "missing", 1, ReadError, "holding 50..50: write refused: ILLEGAL_ADDRESS (2)"),
    ],
)
async def test_write_errors_name_device_and_address(
    device: str, name: str, value: object, error: type[BridgeError], message: str
) -> None:
    registers = [
        {"name": "speed", "table": "holding", "address": 2, "writable": True},
        {"name": "count", "table": "holding", "address": 6},
        {"name": "missing", "table": "holding", "address": 50, "writable": True},  # the server has no register 50
    ]
    async with TcpServer(sim_device(holding={0: [0] * 8})) as server:
        config = bridge_config({"id": "plc1", "port": server.port, "registers": registers})
        async with ModbusSource(config=config) as source:
            with pytest.raises(error) as caught:
                await source.write(device, name, value)  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert type(caught.value) is error
    if device == "plc1":
        assert f"127.0.0.1:{server.port} unit 1" in str(caught.value)


async def test_write_to_a_device_that_does_not_answer() -> None:
    async with TcpServer(sim_device()) as server:
        port = server.port
    config = bridge_config(
        {
            "id": "plc1",
            "port": port,
            "timeout_s": 0.2,
            "registers": [{"name": "sp", "table": "holding", "address": 0, "writable": True}],
        }
    )
    async with ModbusSource(config=config) as source:
        with pytest.raises(DeviceUnreachable, match=rf"tcp 127\.0\.0\.1:{port} unit 1.*cannot connect"):
            await source.write("plc1", "sp", 1)
