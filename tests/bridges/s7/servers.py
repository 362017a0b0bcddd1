"""S7 counterparts for the tests: snap7's pure-Python ``Server`` in-process, the C Snap7 server, test images.

The images are packed here with ``struct`` (not with the driver's codec), so a decoding bug cannot
hide behind the same bug in the encoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import struct
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from snap7.server import Server
from snap7.type import SrvArea

from bridges.s7.device import S7Plc
from model.bridges.s7 import S7BridgeConfig
from tests.fixtures.requires import PEER_PACKAGES, require
from tests.peers.node_peer import NodePeer

__all__ = [
    "ALL_TYPES",
    "DTL_MS",
    "DT_MS",
    "CSnap7",
    "bridge",
    "c_snap7",
    "images",
    "plc",
    "python_server",
    "tag_specs",
]

DT_MS = int(datetime.datetime(2024, 3, 5, 14, 30, 15, 123000, tzinfo=datetime.UTC).timestamp() * 1000)
DTL_MS = int(datetime.datetime(2024, 3, 5, 14, 30, 15, 123000, tzinfo=datetime.UTC).timestamp() * 1000)

ALL_TYPES: list[dict[str, Any]] = [
    {"name": "Bool/On", "address": "DB1.DBX0.0", "value": True, "write": False},
    {"name": "Bool/Off", "address": "DB1.DBX0.3", "value": False, "write": True},
    {"name": "Byte", "address": "DB1.DBB1", "value": 0xAB, "write": 7},
    {"name": "Word", "address": "DB1.DBW2", "value": 0xBEEF, "write": 0x1234},
    {"name": "Int", "address": "DB1.DBW4", "type": "INT", "value": -1234, "write": 321},
    {"name": "DWord", "address": "DB1.DBD6", "value": 0xDEADBEEF, "write": 1},
    {"name": "DInt", "address": "DB1.DBD10", "type": "DINT", "value": -123456789, "write": 99},
    {"name": "Real", "address": "DB1.DBD14:REAL", "value": 3.5, "write": -0.25},
    {"name": "LReal", "address": "DB1.DBB18", "type": "LREAL", "value": -2.25e10, "write": 1e-3},
    {"name": "String", "address": "DB1.DBB26", "type": "STRING", "length": 10, "value": "hello", "write": "bye"},
    {"name": "WString", "address": "DB1.DBB38", "type": "WSTRING", "length": 4, "value": "Äb", "write": "µ€"},
    {"name": "DateAndTime", "address": "DB1.DBB50", "type": "DATE_AND_TIME", "value": DT_MS, "write": DT_MS + 1001},
    {"name": "Dtl", "address": "DB1.DBB58", "type": "DTL", "value": DTL_MS, "write": DTL_MS - 86_400_000},
    {"name": "Merker/Bit", "address": "M10.1", "value": True, "write": False},
    {"name": "Merker/Word", "address": "MW20", "type": "INT", "value": 7, "write": -7},
    {"name": "Input", "address": "I0.0", "value": True, "write": None},
    {"name": "Output", "address": "QB1", "value": 0x5A, "write": 0xA5},
    {"name": "Timer", "address": "T5", "value": 2500, "write": 10_000},
    {"name": "Counter", "address": "C3", "value": 123, "write": 998},
]
"""Every S7 type and area: address, the value the image holds, and a value to write (None: read only)."""


def images(*, c_snap7_timers: bool = False) -> dict[str, bytearray]:
    """Area contents holding ``ALL_TYPES``' values: DB1, MK (merkers), PE (inputs), PA (outputs), TM, CT.

    Timer and counter ``n`` sit at byte ``2 n`` of their area, as snap7's Python server reads them. The C
    Snap7 server reads them at byte ``n >> 1`` (s7_server.cpp: ``Start = Start >> 1``, where a timer is 2
    bytes): every client (C and Python snap7, ours) sends the timer's number as the S7 protocol has it, so
    ``c_snap7_timers`` places them where that server looks.
    """
    db = bytearray(80)
    db[0] = 0b1111_0111  # bit 3 off among bits that are on: a bit write must leave them alone
    db[1] = 0xAB
    struct.pack_into(">HhIif", db, 2, 0xBEEF, -1234, 0xDEADBEEF, -123456789, 3.5)
    struct.pack_into(">d", db, 18, -2.25e10)
    db[26:33] = bytes([10, 5]) + b"hello"
    db[38:46] = struct.pack(">HH", 4, 2) + "Äb".encode("utf-16-be")
    db[50:58] = bytes([0x24, 0x03, 0x05, 0x14, 0x30, 0x15, 0x12, 0x33])  # BCD; 3 = Tuesday (1 = Sunday)
    struct.pack_into(">HBBBBBBI", db, 58, 2024, 3, 5, 3, 14, 30, 15, 123_456_789)
    mk = bytearray(32)
    mk[10] = 0b0000_0010
    struct.pack_into(">h", mk, 20, 7)
    pe, pa = bytearray([0b1, 0]), bytearray([0, 0x5A, 0])
    tm, ct = bytearray(16), bytearray(16)
    timer, counter = (5 >> 1, 3 >> 1) if c_snap7_timers else (10, 6)
    tm[timer : timer + 2] = bytes([0x10, 0x25])  # timer 5: S5TIME base 100 ms, 025 -> 2.5 s
    ct[counter : counter + 2] = bytes([0x01, 0x23])  # counter 3: BCD 123
    return {"DB1": db, "MK": mk, "PE": pe, "PA": pa, "TM": tm, "CT": ct}


def bridge(port: int, tags: list[dict[str, Any]], **device: Any) -> S7BridgeConfig:
    """An S7 bridge with one device ``plc`` on 127.0.0.1:``port``."""
    spec = {"id": "plc", "host": "127.0.0.1", "port": port, "timeout_s": 2.0, "connect_timeout_s": 2.0, "tags": tags}
    return S7BridgeConfig.model_validate({"name": "s7", "edge": {"group": "g"}, "devices": [spec | device]})


def plc(config: S7BridgeConfig) -> S7Plc:
    """The driver of the config's first device."""
    device = config.devices[0]
    return S7Plc(bridge=config.name, config=device, tags=device.tags)


def tag_specs(writable: bool = False) -> list[dict[str, Any]]:
    """``ALL_TYPES`` as tag configs."""
    keys = ("name", "address", "type", "length")
    return [{k: t[k] for k in keys if k in t} | {"writable": writable and t["write"] is not None} for t in ALL_TYPES]


_SRV_AREAS = {"MK": SrvArea.MK, "PE": SrvArea.PE, "PA": SrvArea.PA, "TM": SrvArea.TM, "CT": SrvArea.CT}


@contextlib.asynccontextmanager
async def python_server(
    areas: Mapping[str, bytearray], *, server: Server | None = None, max_clients: int = 64
) -> AsyncIterator[int]:
    """snap7's pure-Python server serving ``areas`` (mutated in place by writes) on 127.0.0.1, a free port."""
    server = server or Server(log=False, max_clients=max_clients)
    for name, data in areas.items():
        if name.startswith("DB"):
            server.register_area(SrvArea.DB, int(name[2:]), data)
        else:
            server.register_area(_SRV_AREAS[name], 0, data)
    server.host = "127.0.0.1"
    await asyncio.to_thread(server.start, 0)
    assert server.server_socket is not None
    try:
        yield server.server_socket.getsockname()[1]
    finally:
        await asyncio.to_thread(server.stop)


class CSnap7:
    """The C Snap7 server (node-snap7) in a node process: its port, and its areas read back."""

    def __init__(self, peer: NodePeer, port: int) -> None:
        self.peer = peer
        self.port = port

    async def area(self, name: str) -> bytes:
        """The server's current contents of an area."""
        await self._send({"get": name})
        event = await self.peer.next_event("area")
        return bytes.fromhex(str(event["hex"]))

    async def cpu(self, status: str) -> None:
        """Put the virtual CPU in ``run`` or ``stop``."""
        await self._send({"cpu": status})
        await self.peer.next_event("cpu")

    async def _send(self, command: dict[str, str]) -> None:
        stdin = self.peer.process.stdin
        assert stdin is not None
        stdin.write((json.dumps(command) + "\n").encode())
        await stdin.drain()


@contextlib.asynccontextmanager
async def c_snap7(areas: Mapping[str, bytes | bytearray]) -> AsyncIterator[CSnap7]:
    """``node s7_server.js`` serving ``areas``; skips without node or a built node-snap7."""
    payload = json.dumps({name: bytes(data).hex() for name, data in areas.items()})
    node = require("node")
    require("node-snap7")
    process = await asyncio.create_subprocess_exec(
        node,
        str(Path(PEER_PACKAGES) / "s7_server.js"),
        payload,
        cwd=PEER_PACKAGES,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    peer = NodePeer(process, "s7_server.js")
    try:
        ready = await peer.next_event("ready")
        yield CSnap7(peer, int(str(ready["port"])))
    finally:
        peer.kill()
        await process.wait()
