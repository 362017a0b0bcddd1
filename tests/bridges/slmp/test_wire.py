"""The bytes on the wire, read by a recording proxy in front of virtual-plc: frames, route fields, device widths.

Parsed here from the SLMP frame layout (subheader, [serial, reserved,] network, station, module
I/O, multidrop, length, timer, command, subcommand, data), not by the client library that built them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bridges.slmp.counterpart import VirtualPlc, virtual_plc
from tests.bridges.slmp.test_device import plc, values


@contextlib.asynccontextmanager
async def _recording(upstream: VirtualPlc) -> AsyncIterator[tuple[VirtualPlc, bytearray]]:
    """A TCP proxy to ``upstream`` that keeps every byte the client sent."""
    sent = bytearray()
    tasks: set[asyncio.Task[None]] = set()

    writers: list[asyncio.StreamWriter] = []

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if record:
                    sent.extend(data)
                writer.write(data)
                await writer.drain()

    async def serve(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        plc_reader, plc_writer = await asyncio.open_connection(upstream.host, upstream.port)
        writers.extend((client_writer, plc_writer))
        for task in (pump(client_reader, plc_writer, True), pump(plc_reader, client_writer, False)):
            tasks.add(asyncio.create_task(task, name="slmp-recording-proxy"))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield VirtualPlc("127.0.0.1", server.sockets[0].getsockname()[1]), sent
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer in writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await server.wait_closed()


def _frames(data: bytes) -> list[dict[str, object]]:
    frames: list[dict[str, object]] = []
    while data:
        four_e = data[:2] == b"\x54\x00"
        assert four_e or data[:2] == b"\x50\x00", f"unknown subheader {data[:2].hex()}"
        route = data[6:11] if four_e else data[2:7]
        length = int.from_bytes((data[11:13] if four_e else data[7:9]), "little")
        body = data[13 if four_e else 9 :][:length]
        frames.append({
            "frame": "4E" if four_e else "3E",
            "route": (route[0], route[1], int.from_bytes(route[2:4], "little"), route[4]),
            "command": int.from_bytes(body[2:4], "little"),
            "subcommand": int.from_bytes(body[4:6], "little"),
            "data": body[6:],
        })  # fmt: skip
        data = data[(13 if four_e else 9) + length :]
    return frames


@pytest.mark.parametrize(
    ("series", "frame", "subcommand", "d100"),
    [
        # Q/L format: 3-byte device number, 1-byte device code (D = 0xA8), subcommand 0x0000
        ("Q", "3E", 0x0000, bytes([100, 0, 0, 0xA8])),
        ("Q", "4E", 0x0000, bytes([100, 0, 0, 0xA8])),
        # iQ-R format: 4-byte device number, 2-byte device code, subcommand 0x0002
        ("iQ-R", "4E", 0x0002, bytes([100, 0, 0, 0, 0xA8, 0])),
        ("iQ-R", "3E", 0x0002, bytes([100, 0, 0, 0, 0xA8, 0])),
    ],
)
async def test_frames_route_fields_and_device_widths_on_the_wire(
    tmp_path: Path, series: str, frame: str, subcommand: int, d100: bytes
) -> None:
    with virtual_plc(tmp_path, profile=series, seed={"D": {"100": [321]}}) as server:
        async with _recording(server) as (proxy, sent):
            device = plc(proxy, series, [{"name": "a", "address": "D100"}], frame=frame, network=1, station=2,
                         module_io=0x03E1, multidrop=3)  # fmt: skip
            await device.connect()
            try:
                read = await device.read("default")
            finally:
                await device.close()
    assert values(read) == {"a": 321}
    probe, random = _frames(bytes(sent))
    for request in (probe, random):
        assert request["frame"] == frame
        assert request["route"] == (1, 2, 0x03E1, 3)
        assert request["subcommand"] == subcommand
    assert probe["command"] == 0x0401  # batch read of SD203: number 203, code 0xA9, one point
    assert probe["data"] == (203).to_bytes(len(d100) - (2 if series == "iQ-R" else 1), "little") + bytes(
        [0xA9] + ([0] if series == "iQ-R" else [])
    ) + (1).to_bytes(2, "little")
    assert random["command"] == 0x0403  # random read: one word point, no double words
    assert random["data"] == bytes([1, 0]) + d100
