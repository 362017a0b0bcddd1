"""The simulated PLC's Modbus TCP server against pymodbus's client, a counterpart we did not write, and raw frames."""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from collections.abc import AsyncIterator
from typing import Literal

import pytest
from pymodbus.client import AsyncModbusTcpClient

from bridges.sim import modbus_server
from bridges.sim.modbus_plant import decode_registers, encode_registers
from bridges.sim.modbus_server import ModbusServer, answer
from model.bridges.modbus import RegisterType, Table, WordOrder
from tests.exports import assert_all_is_honest
from tests.fixtures.waiting import until

_TYPES = AsyncModbusTcpClient.DATATYPE
_DATATYPE = {"int16": _TYPES.INT16, "uint16": _TYPES.UINT16, "int32": _TYPES.INT32, "uint32": _TYPES.UINT32,
             "int64": _TYPES.INT64, "float32": _TYPES.FLOAT32, "float64": _TYPES.FLOAT64}  # fmt: skip


def _tables() -> dict[Table, list[int]]:
    return {
        "coil": [0, 1, 0, 0, 1, 1, 0, 1, 1, 0],
        "discrete": [1, 0, 1],
        "holding": [0] * 8,
        "input": [0x0102, 0xFFFF, 7],
    }


@contextlib.asynccontextmanager
async def _client(port: int) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0, reconnect_delay=0)
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()


async def _exchange(port: int, *frames: bytes, want: int = 1) -> bytes:
    """Send raw bytes (each frame a write of its own) and return what came back: ``want`` answers, or EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for frame in frames:
            writer.write(frame)
            await writer.drain()
            await asyncio.sleep(0.01)  # separate segments, so the server sees a frame in pieces
        received = b""
        async with asyncio.timeout(2):
            while len(received) < want * 6 or not _complete(received, want):
                chunk = await reader.read(260)
                if not chunk:
                    break
                received += chunk
        return received
    finally:
        writer.close()


def _complete(data: bytes, frames: int) -> bool:
    offset = 0
    for _ in range(frames):
        if len(data) < offset + 6:
            return False
        offset += 6 + int.from_bytes(data[offset + 4 : offset + 6], "big")
    return len(data) >= offset


def _mbap(pdu: bytes, *, transaction: int = 7, unit: int = 1, protocol: int = 0, length: int | None = None) -> bytes:
    return struct.pack(">HHHB", transaction, protocol, len(pdu) + 1 if length is None else length, unit) + pdu


def test_exports_are_honest() -> None:
    assert_all_is_honest("bridges.sim.modbus_server")


@pytest.mark.parametrize(
    ("request_pdu", "response_pdu"),
    [
        (bytes.fromhex("01 0000 000a"), bytes.fromhex("01 02 b2 01")),  # coils 0..9, first bit in the low bit
        (bytes.fromhex("02 0001 0002"), bytes.fromhex("02 01 02")),
        (bytes.fromhex("04 0000 0003"), bytes.fromhex("04 06 0102 ffff 0007")),
        (bytes.fromhex("03 0006 0002"), bytes.fromhex("03 04 0000 0000")),
        (bytes.fromhex("05 0002 ff00"), bytes.fromhex("05 0002 ff00")),  # a write is echoed
        (bytes.fromhex("06 0007 1234"), bytes.fromhex("06 0007 1234")),
        (bytes.fromhex("0f 0000 0003 01 05"), bytes.fromhex("0f 0000 0003")),
        (bytes.fromhex("10 0000 0002 04 0001 0002"), bytes.fromhex("10 0000 0002")),
        (bytes.fromhex("07"), bytes.fromhex("87 01")),  # read exception status: not served
        (bytes.fromhex("08 0000 1234"), bytes.fromhex("88 01")),
        (bytes.fromhex("2b 0e 01 00"), bytes.fromhex("ab 01")),
        (bytes.fromhex("04 0000 0004"), bytes.fromhex("84 02")),  # one past the table
        (bytes.fromhex("04 0003 0001"), bytes.fromhex("84 02")),
        (bytes.fromhex("02 0000 0004"), bytes.fromhex("82 02")),
        (bytes.fromhex("05 000a ff00"), bytes.fromhex("85 02")),
        (bytes.fromhex("06 0008 0001"), bytes.fromhex("86 02")),
        (bytes.fromhex("0f 0008 0003 01 07"), bytes.fromhex("8f 02")),
        (bytes.fromhex("10 0007 0002 04 0001 0002"), bytes.fromhex("90 02")),
        (bytes.fromhex("03 0000 0000"), bytes.fromhex("83 03")),  # quantity 0
        (bytes.fromhex("03 0000 007e"), bytes.fromhex("83 03")),  # 126 registers: more than a read may ask
        (bytes.fromhex("01 0000 07d1"), bytes.fromhex("81 03")),  # 2001 bits
        (bytes.fromhex("03 0000"), bytes.fromhex("83 03")),  # a body too short for its function
        (bytes.fromhex("03 0000 0001 00"), bytes.fromhex("83 03")),  # ... or too long
        (bytes.fromhex("05 0000 1234"), bytes.fromhex("85 03")),  # a coil is ff00 or 0000
        (bytes.fromhex("0f 0000 0003 02 05 00"), bytes.fromhex("8f 03")),  # byte count does not match
        (bytes.fromhex("10 0000 0002 03 0001 00"), bytes.fromhex("90 03")),
        (bytes.fromhex("10 0000 007c f8") + bytes(248), bytes.fromhex("90 03")),  # 124 registers: too many
        (bytes.fromhex("03 fff0 0020"), bytes.fromhex("83 02")),  # a range past 65535 is past the table too
    ],
)
def test_answers_follow_the_protocols_order_of_checks(request_pdu: bytes, response_pdu: bytes) -> None:
    assert answer(_tables(), request_pdu) == response_pdu


def test_writes_change_the_tables_in_place() -> None:
    tables = _tables()
    answer(tables, bytes.fromhex("0f 0001 0003 01 06"))  # coils 1..3 = 0, 1, 1
    answer(tables, bytes.fromhex("05 0000 ff00"))
    answer(tables, bytes.fromhex("10 0005 0003 06 0001 0002 0003"))
    answer(tables, bytes.fromhex("06 0000 beef"))
    assert tables["coil"][:5] == [1, 0, 1, 1, 1]
    assert tables["holding"] == [0xBEEF, 0, 0, 0, 0, 1, 2, 3]
    assert answer(tables, bytes.fromhex("05 0000 0000")) == bytes.fromhex("05 0000 0000")
    assert tables["coil"][0] == 0


def test_random_requests_never_raise_and_keep_the_tables_sound() -> None:
    rng = random.Random(16)
    for _ in range(5000):
        tables = _tables()
        function = rng.choice([1, 2, 3, 4, 5, 6, 15, 16, rng.randrange(256)])
        reply = answer(tables, bytes([function]) + rng.randbytes(rng.randrange(12)))
        assert reply[0] in (function, (function & 0x7F) | 0x80)
        assert [len(tables[t]) for t in ("coil", "discrete", "holding", "input")] == [10, 3, 8, 3]  # never grown
        assert set(tables["coil"]) <= {0, 1}
        assert all(0 <= word <= 0xFFFF for word in tables["holding"])


async def test_pymodbus_reads_every_table() -> None:
    async with ModbusServer(tables=_tables()) as server, _client(server.port) as client:
        coils = await client.read_coils(0, count=10, device_id=1)
        assert coils.bits[:10] == [False, True, False, False, True, True, False, True, True, False]
        discrete = await client.read_discrete_inputs(0, count=3, device_id=1)
        assert discrete.bits[:3] == [True, False, True]
        assert (await client.read_input_registers(0, count=3, device_id=1)).registers == [0x0102, 0xFFFF, 7]
        assert (await client.read_holding_registers(2, count=6, device_id=1)).registers == [0] * 6


async def test_pymodbus_writes_reach_the_tables() -> None:
    tables = _tables()
    async with ModbusServer(tables=tables) as server, _client(server.port) as client:
        assert not (await client.write_coil(2, True, device_id=1)).isError()
        assert not (await client.write_coils(6, [True, False, True, True], device_id=1)).isError()
        assert not (await client.write_register(1, 0xABCD, device_id=1)).isError()
        assert not (await client.write_registers(4, [1, 2, 3, 4], device_id=1)).isError()
        assert tables["coil"] == [0, 1, 1, 0, 1, 1, 1, 0, 1, 1]
        assert tables["holding"] == [0, 0xABCD, 0, 0, 1, 2, 3, 4]
        assert (await client.read_holding_registers(0, count=8, device_id=1)).registers == tables["holding"]


async def test_pymodbus_sees_each_exception_code() -> None:
    async with ModbusServer(tables=_tables()) as server, _client(server.port) as client:
        unserved = await client.read_exception_status(device_id=1)
        past = await client.read_input_registers(2, count=2, device_id=1)
        write_past = await client.write_registers(7, [1, 2], device_id=1)
        coil_past = await client.write_coil(10, True, device_id=1)
        assert [r.exception_code for r in (unserved, past, write_past, coil_past)] == [1, 2, 2, 2]
        assert all(r.isError() for r in (unserved, past, write_past, coil_past))
        other_unit = await client.read_input_registers(0, count=1, device_id=2)
        assert other_unit.isError()
        assert other_unit.exception_code == 11  # nothing answers behind this PLC
        assert not (await client.read_input_registers(0, count=1, device_id=1)).isError()  # the connection stays


async def test_illegal_values_come_back_as_exception_3() -> None:
    # pymodbus's client will not send a quantity out of range, so these frames are written by hand
    async with ModbusServer(tables=_tables()) as server:
        assert await _exchange(server.port, _mbap(bytes.fromhex("03 0000 007e"))) == _mbap(bytes.fromhex("83 03"))
        coil = _mbap(bytes.fromhex("05 0000 0001"), transaction=9)
        assert await _exchange(server.port, coil) == _mbap(bytes.fromhex("85 03"), transaction=9)


@pytest.mark.parametrize("order", ["ABCD", "CDAB", "BADC", "DCBA"])
@pytest.mark.parametrize(
    ("type_", "value"),
    [("int16", -1234), ("uint16", 54321), ("int32", -123456789), ("uint32", 4_000_000_000), ("int64", -(2**40) - 3),
     ("float32", 321.5), ("float64", 1234567.890625)],
)  # fmt: skip
async def test_multi_register_values_in_each_word_order(order: WordOrder, type_: RegisterType, value: float) -> None:
    tables = _tables()
    words = encode_registers(value, type_, order=order)
    async with ModbusServer(tables=tables) as server, _client(server.port) as client:
        assert not (await client.write_registers(0, words, device_id=1)).isError()
        read = (await client.read_holding_registers(0, count=len(words), device_id=1)).registers
    assert read == words == tables["holding"][: len(words)]
    assert decode_registers(read, type_, order=order) == value
    # pymodbus's own conversion knows word order only: undo a byte swap first
    unswapped = [((w & 0xFF) << 8) | (w >> 8) for w in read] if order in ("BADC", "DCBA") else read
    word_order: Literal["big", "little"] = "little" if order in ("CDAB", "DCBA") else "big"
    assert client.convert_from_registers(unswapped, _DATATYPE[type_], word_order=word_order) == value


async def test_concurrent_clients_each_get_their_own_answers() -> None:
    tables = _tables()
    tables["holding"] = list(range(100, 108))
    async with ModbusServer(tables=tables) as server:

        async def reader(offset: int) -> None:
            async with _client(server.port) as client:
                for round_ in range(30):
                    address = (offset + round_) % 8
                    reads = await asyncio.gather(
                        client.read_holding_registers(address, count=1, device_id=1),
                        client.read_input_registers(0, count=3, device_id=1),
                    )
                    assert reads[0].registers == [100 + address]
                    assert reads[1].registers == [0x0102, 0xFFFF, 7]

        async def writer() -> None:
            async with _client(server.port) as client:
                for round_ in range(30):
                    assert not (await client.write_coil(9, bool(round_ % 2), device_id=1)).isError()

        await asyncio.gather(*(reader(offset) for offset in range(5)), writer())
        await until(lambda: not server.connections, what="the server forgetting its closed clients")


async def test_frames_split_or_joined_in_the_stream() -> None:
    async with ModbusServer(tables=_tables()) as server:
        frame = _mbap(bytes.fromhex("04 0002 0001"), transaction=3)
        assert await _exchange(server.port, frame[:4], frame[4:9], frame[9:]) == _mbap(
            bytes.fromhex("04 02 0007"), transaction=3
        )
        two = _mbap(bytes.fromhex("04 0000 0001"), transaction=1) + _mbap(bytes.fromhex("02 0000 0001"), transaction=2)
        assert await _exchange(server.port, two, want=2) == _mbap(bytes.fromhex("04 02 0102"), transaction=1) + _mbap(
            bytes.fromhex("02 01 01"), transaction=2
        )
        other_unit = _mbap(bytes.fromhex("03 0000 0001"), unit=2)
        assert await _exchange(server.port, other_unit) == _mbap(bytes.fromhex("83 0b"), unit=2)


@pytest.mark.parametrize("unit", [0x00, 0xFF])
async def test_the_unit_ids_for_a_device_on_tcp_itself_are_answered(unit: int) -> None:
    # Messaging on TCP/IP guide 4.4.1.2: 0xFF is the unit id for a device reached directly, 0 is accepted too
    async with ModbusServer(tables=_tables()) as server, _client(server.port) as client:
        assert (await client.read_input_registers(0, count=3, device_id=unit)).registers == [0x0102, 0xFFFF, 7]
        frame = _mbap(bytes.fromhex("04 0002 0001"), transaction=0xBEEF, unit=unit)
        assert await _exchange(server.port, frame) == _mbap(bytes.fromhex("04 02 0007"), transaction=0xBEEF, unit=unit)


@pytest.mark.parametrize(
    "header",
    [
        _mbap(bytes.fromhex("04 0000 0001"), protocol=1),  # not Modbus
        _mbap(bytes.fromhex("04 0000 0001"), length=300),  # longer than any ADU
        _mbap(bytes.fromhex("04 0000 0001"), length=1),  # a unit id and no function code
        _mbap(b"", length=0),
    ],
)
async def test_a_header_that_is_not_modbus_closes_the_connection(header: bytes) -> None:
    async with ModbusServer(tables=_tables()) as server:
        assert await _exchange(server.port, header) == b""  # closed without an answer
        async with _client(server.port) as client:  # the PLC itself serves on
            assert (await client.read_input_registers(2, count=1, device_id=1)).registers == [7]


async def test_stop_drops_the_connections_and_start_serves_on_the_same_port() -> None:
    server = ModbusServer(tables=_tables())
    await server.start()
    port = server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await server.stop()
    async with asyncio.timeout(2):
        assert await reader.read(10) == b""
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    await server.start()
    try:
        assert server.port == port
        async with _client(port) as client:
            assert (await client.read_discrete_inputs(0, count=1, device_id=1)).bits[0]
    finally:
        await server.stop()
        await server.stop()  # idempotent


async def test_a_client_accepted_as_the_plc_stops_is_dropped_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # the accept runs in one loop step, connection_made in a later one: stop() can fall in between
    server = ModbusServer(tables=_tables())
    stopping: list[asyncio.Future[None]] = []

    class StopOnAccept(modbus_server._Connection):
        def __init__(self, owner: ModbusServer) -> None:
            super().__init__(owner)
            stopping.append(asyncio.ensure_future(owner.stop()))  # runs before connection_made

    monkeypatch.setattr(modbus_server, "_Connection", StopOnAccept)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        async with asyncio.timeout(2):
            await until(lambda: bool(stopping), what="the server accepting the client")
            await stopping[0]
            writer.write(_mbap(bytes.fromhex("04 0002 0001")))
            assert await reader.read(20) == b""  # dropped, not answered from the stopped PLC's tables
        assert not server.connections
    finally:
        writer.close()
