"""The simulated PLC checked by FINS clients nobody here wrote: fins-driver 0.3.1 (UDP) and npm omron-fins 0.5.0.

So the simulator is not only a mirror of our own reading of W342: two other authors' clients read and
write it, over UDP and FINS/TCP, and see the same words, bits, EM banks and end codes.
"""

from __future__ import annotations

import asyncio
import json

import fins  # type: ignore[import-untyped]  # fins-driver: test-only, untyped
import pytest

from bridges.sim.fins_server import FinsServer
from model.bridges.fins_address import parse_address
from tests.peers.node_peer import node_peer


def _prepare(sim: FinsServer) -> None:
    sim.memory.set_words(parse_address("D100"), bytes.fromhex("12345678"))
    sim.memory.set_words(parse_address("E2_100"), bytes.fromhex("002a"))
    sim.memory.set_bit(parse_address("CIO5.15"), True)


async def test_fins_driver_reads_and_writes_the_simulator_over_udp() -> None:
    async with FinsServer() as sim:
        _prepare(sim)

        def session() -> dict[str, object]:
            client = fins.FinsClient(host="127.0.0.1", port=sim.port, mode="udp", timeout=3)
            client.connect()
            try:
                words = client.memory_area_read("D100", 2)
                wrote = client.memory_area_write("D102", b"\x00\x07\x00\x08", 2)
                bit = client.memory_area_read("CIO5.15", 1)
                multiple = client.multiple_memory_area_read("D100", "CIO5.15", "D103")
                read_only = client.memory_area_write("A100", b"\x00\x01", 1)
                past_end = client.memory_area_read("D32767", 2)
                return {
                    "words": (words.code, words.data),
                    "wrote": wrote.code,
                    "bit": (bit.code, bit.data),
                    "multiple": (multiple.code, multiple.data),
                    "read_only": read_only.code,
                    "past_end": past_end.code,
                }
            finally:
                client.close()

        seen = await asyncio.to_thread(session)
        assert sim.memory.get_words(parse_address("D102"), 2).hex() == "00070008"
    assert seen == {
        "words": (b"\x00\x00", bytes.fromhex("12345678")),
        "wrote": b"\x00\x00",
        "bit": (b"\x00\x00", b"\x01"),
        "multiple": (b"\x00\x00", [b"\x12\x34", b"\x01", b"\x00\x08"]),
        "read_only": b"\x21\x01",
        "past_end": b"\x11\x04",
    }


_STEPS = [
    {"op": "cpu"},
    {"op": "read", "address": "D100", "count": 2},
    {"op": "write", "address": "D102", "values": [7, 8]},
    {"op": "write", "address": "W10.05", "values": [True]},
    {"op": "read", "address": "W10", "count": 1},
    {"op": "read", "address": "E2_100", "count": 1},
    {"op": "readMultiple", "addresses": "D100,CIO5.15,D103"},
    {"op": "write", "address": "A100", "values": [1]},
    {"op": "read", "address": "D32767", "count": 2},
]


@pytest.mark.requires("node", "peer-packages")
@pytest.mark.parametrize("protocol", ["udp", "tcp"])
async def test_omron_fins_reads_and_writes_the_simulator(protocol: str) -> None:
    async with FinsServer() as sim:
        _prepare(sim)
        async with node_peer("fins_peer.js", str(sim.port), protocol, json.dumps(_STEPS)) as peer:
            events = await peer.all_events(within_s=20)
        assert sim.memory.get_words(parse_address("D102"), 2).hex() == "00070008"
        assert sim.tcp_clients == (1 if protocol == "tcp" else 0)
    replies = [(e["op"], e.get("endCode"), e.get("values")) for e in events if e["event"] == "reply"]
    assert replies == [
        ("cpu", "0000", None),
        ("read", "0000", [0x1234, 0x5678]),
        ("write", "0000", None),
        ("write", "0000", None),
        ("read", "0000", [0x0020]),
        ("read", "0000", [42]),
        ("readMultiple", "0000", [0x1234, 1, 8]),
        ("write", "2101", None),
        ("read", "1104", []),
    ]
    cpu = next(e for e in events if e.get("op") == "cpu")
    assert (cpu["model"], cpu["largestEmBank"]) == ("CJ2M-CPU33", 2)
    assert [e["event"] for e in events if e["event"] in ("error", "timeout")] == []
