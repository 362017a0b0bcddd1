"""FinsPlc (the PlcDevice of FINS) against the simulated PLC: values, end codes as tag problems, routes, writes."""

from __future__ import annotations

from typing import Any

import pytest

from bridges.sim.fins_server import FinsServer
from model.bridges.fins_address import parse_address
from model.envelope import Quality
from tests.bridges.fins.plcs import plc_for
from uns.errors import BridgeError, DeviceRefused, DeviceUnreachable, ReadError

_TAGS: list[dict[str, Any]] = [
    {"name": "Flow", "address": "D100", "type": "float32", "unit": "m3/h"},
    {"name": "Hours", "address": "D102", "type": "uint32"},
    {"name": "Level", "address": "D104", "type": "int16"},
    {"name": "Running", "address": "W0.03", "type": "bool"},
    {"name": "Energy", "address": "E1_0", "type": "float64"},
    {"name": "Name", "address": "H10", "type": "string", "length": 4},
    {"name": "Setpoint", "address": "D200", "type": "float32", "writable": True},
    {"name": "Run", "address": "W1.00", "type": "bool", "writable": True},
]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_reads_every_type_from_every_area(transport: str) -> None:
    async with FinsServer() as sim:
        mem = sim.memory
        mem.set_words(parse_address("D100"), bytes.fromhex("000042c8"))  # 100.0, low word first
        mem.set_words(parse_address("D102"), bytes.fromhex("56781234"))
        mem.set_words(parse_address("D104"), bytes.fromhex("fffe"))
        mem.set_bit(parse_address("W0.03"), True)
        mem.set_words(parse_address("E1_0"), bytes.fromhex("0000000000004004"))  # 2.5
        mem.set_words(parse_address("H10"), b"P-101\x00\x00\x00")
        plc = plc_for(sim.port, *_TAGS, transport=transport)
        await plc.connect()
        try:
            read = await plc.read("default")
        finally:
            await plc.close()
    values = {s.name: s.value for s in read.samples}
    assert values == {"Flow": 100.0, "Hours": 0x12345678, "Level": -2, "Running": True, "Energy": 2.5,
                      "Name": "P-101", "Setpoint": 0.0, "Run": False}  # fmt: skip
    assert read.problems == []
    assert plc.model == "CJ2M-CPU33"


async def test_a_missing_em_bank_marks_just_its_tag_bad() -> None:
    tags = [{"name": "A", "address": "E7_0"}, {"name": "B", "address": "D0"}, {"name": "C", "address": "D1"}]
    async with FinsServer() as sim:  # 3 EM banks: E7 does not exist (0x1101)
        sim.memory.set_words(parse_address("D0"), bytes.fromhex("00070008"))
        plc = plc_for(sim.port, *tags, max_items=10)
        await plc.connect()
        read = await plc.read("default")
        await plc.close()
    by_name = {s.name: s for s in read.samples}
    assert (by_name["A"].value, by_name["A"].quality) == (None, Quality.bad)
    assert (by_name["B"].value, by_name["C"].value) == (7, 8)
    (problem,) = read.problems
    assert (problem.address, list(problem.tags)) == ("E7_0", ["A"])
    assert problem.reason.startswith("end code 0x1101 area classification missing")


async def test_a_failed_gathered_read_is_retried_tag_by_tag_and_the_culprit_planned_apart() -> None:
    tags = [{"name": "A", "address": "D0"}, {"name": "B", "address": "E9_0"}, {"name": "C", "address": "W5"}]
    async with FinsServer() as sim:
        sim.memory.set_words(parse_address("W5"), b"\x00\x05")
        plc = plc_for(sim.port, *tags, max_items=10)
        assert [r.multiple for r in plc.plan("default")] == [True]  # one 0104 for the three
        await plc.connect()
        read = await plc.read("default")
        assert len(sim.requests) == 1 + 1 + 3  # Controller Data Read, the failed 0104, then tag by tag
        again = await plc.read("default")
        assert len(sim.requests) == 5 + 2  # from then on: A and C still gathered, B alone
        await plc.close()
    assert [str(r) for r in plc.plan("default")] == ["D0, W5", "E9_0"]
    for result in (read, again):
        assert {s.name: s.value for s in result.samples} == {"A": 0, "B": None, "C": 5}
        assert [p.address for p in result.problems] == ["E9_0"]


async def test_cpu_error_flags_do_not_spoil_good_data() -> None:
    async with FinsServer() as sim:
        sim.memory.set_words(parse_address("D0"), b"\x00\x2a")
        sim.cpu_error = 0x40  # non-fatal error (battery, say): every end code carries the flag
        plc = plc_for(sim.port, {"name": "A", "address": "D0"})
        await plc.connect()
        read = await plc.read("default")
        await plc.close()
    assert (read.samples[0].value, read.problems) == (42, [])


async def test_wrong_network_is_refused_naming_the_route_to_check() -> None:
    async with FinsServer() as sim:
        plc = plc_for(sim.port, {"name": "A", "address": "D0"}, network=3)
        with pytest.raises(DeviceRefused) as caught:
            await plc.connect()
    message = str(caught.value)
    assert "end code 0x0502 no routing tables" in message
    assert "check network (DNA), node (DA1) and unit (DA2)" in message
    assert "fins udp 127.0.0.1:" in message


async def test_wrong_unit_is_refused_and_wrong_node_is_unreachable() -> None:
    async with FinsServer() as sim:
        with pytest.raises(DeviceRefused, match="0x0202 unit missing"):
            await plc_for(sim.port, {"name": "A", "address": "D0"}, unit=0x10).connect()
        with pytest.raises(DeviceUnreachable, match=r"from node 0\.9\.0.*its FINS node address"):
            await plc_for(sim.port, {"name": "A", "address": "D0"}, node=9, timeout_s=0.2, retries=0).connect()


async def test_writes_words_and_single_bits() -> None:
    async with FinsServer() as sim:
        sim.memory.set_words(parse_address("W1"), bytes.fromhex("8000"))
        plc = plc_for(sim.port, *_TAGS)
        await plc.connect()
        await plc.write("Setpoint", 12.5)
        await plc.write("Run", True)
        await plc.close()
        assert sim.memory.get_words(parse_address("D200"), 2).hex() == "00004148"
        assert sim.memory.get_words(parse_address("W1"), 1).hex() == "8001"  # bit 15 left alone


async def test_bad_writes_name_device_tag_and_address() -> None:
    tags = [*_TAGS, {"name": "Gone", "address": "E9_0", "writable": True}]
    async with FinsServer() as sim:
        plc = plc_for(sim.port, *tags)
        await plc.connect()
        with pytest.raises(BridgeError, match="device pump: tag Flow \\(D100\\) is not writable"):
            await plc.write("Flow", 1.0)
        with pytest.raises(BridgeError, match="device pump: tag Setpoint \\(D200\\): 1e\\+39 is out of range"):
            await plc.write("Setpoint", 1e39)
        with pytest.raises(BridgeError, match="has no tag 'Nope'"):
            await plc.write("Nope", 1)
        with pytest.raises(ReadError) as caught:
            await plc.write("Gone", 1)
        await plc.close()
    assert caught.value.address == "E9_0"
    assert "end code 0x1101" in str(caught.value)


async def test_close_is_idempotent_and_connect_works_again() -> None:
    async with FinsServer() as sim:
        plc = plc_for(sim.port, {"name": "A", "address": "D0"}, transport="tcp")
        await plc.connect()
        await plc.close()
        await plc.close()
        await plc.connect()
        assert (await plc.read("default")).samples[0].value == 0
        await plc.close()
        assert sim.tcp_clients == 2


async def test_a_relay_error_names_the_relay_that_reported_it() -> None:
    async with FinsServer() as sim:
        plc = plc_for(sim.port, {"name": "A", "address": "D0"}, network=2)
        sim.relay_error = (0x0205, 2, 7)  # a gateway on network 2 got no answer from the destination
        with pytest.raises(DeviceUnreachable) as caught:
            await plc.connect()
    assert "a relay answered end code 0x0205 response timeout (network relay error) at network 2 node 7" in str(
        caught.value
    )
