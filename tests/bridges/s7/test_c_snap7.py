"""S7Plc against the original C Snap7 server (npm node-snap7 1.0.9, in a node process): reads, writes, limits."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from bridges.s7.pdu import build_read
from model.envelope import Quality
from tests.bridges.s7.servers import ALL_TYPES, bridge, c_snap7, images, plc, tag_specs
from uns.errors import DeviceRefused

pytestmark = pytest.mark.requires("node", "node-snap7")


async def test_every_type_and_area_reads_its_value() -> None:
    async with c_snap7(images(c_snap7_timers=True)) as server:
        device = plc(bridge(server.port, tag_specs()))
        await device.connect()
        try:
            read = await device.read("default")
        finally:
            await device.close()
    assert {s.name: s.value for s in read.samples} == {t["name"]: t["value"] for t in ALL_TYPES}
    assert not read.problems


async def test_every_writable_type_is_written_and_read_back_and_bits_keep_their_neighbours() -> None:
    writable = [t for t in ALL_TYPES if t["write"] is not None]
    async with c_snap7(images(c_snap7_timers=True)) as server:
        device = plc(bridge(server.port, tag_specs(writable=True)))
        await device.connect()
        try:
            for tag in writable:
                await device.write(tag["name"], tag["write"])
            read = await device.read("default")
            db, mk = await server.area("DB1"), await server.area("MK")
        finally:
            await device.close()
    values = {s.name: s.value for s in read.samples}
    for tag in writable:
        assert values[tag["name"]] == pytest.approx(tag["write"]), tag["name"]
    # DB1.DBX0.0 cleared and DB1.DBX0.3 set by bit writes: the byte's other bits untouched (0b1111_0111 before)
    assert db[0] == 0b1111_1110
    assert mk[10] == 0b0000_0000  # M10.1 cleared
    assert db[26:30] == bytes([10, 3]) + b"by"  # STRING: maximum kept, length and characters written
    assert struct.unpack(">HH", db[38:42]) == (4, 2)


async def test_a_plan_of_more_items_than_the_cpu_takes_reads_everything() -> None:
    db = bytearray(4000)
    tags = []
    for index in range(45):
        struct.pack_into(">f", db, index * 80, index + 0.5)
        tags.append({"name": f"R{index}", "address": f"DB1.DBD{index * 80}", "type": "REAL"})
    async with c_snap7({"DB1": db}) as server:
        device = plc(bridge(server.port, tags, max_gap=0))
        await device.connect()
        try:
            read = await device.read("default")
            plan = device.plan("default")
        finally:
            await device.close()
    assert {s.name: s.value for s in read.samples} == {f"R{i}": i + 0.5 for i in range(45)}
    assert [len(r.chunks) for r in plan.requests] == [20, 20, 5]  # C Snap7 answers only the first 20 of more
    assert all(len(build_read(1, r.chunks)) <= device.pdu_size for r in plan.requests)


async def test_item_errors_from_the_c_server_mark_only_their_tags() -> None:
    tags = [
        {"name": "Good", "address": "DB1.DBW2"},
        {"name": "Beyond", "address": "DB1.DBW200"},
        {"name": "NoSuchDb", "address": "DB7.DBW0"},
    ]
    async with c_snap7(images(c_snap7_timers=True)) as server:
        device = plc(bridge(server.port, tags))
        await device.connect()
        try:
            read = await device.read("default")
        finally:
            await device.close()
    assert {s.name: s.quality for s in read.samples} == {
        "Good": Quality.good,
        "Beyond": Quality.bad,
        "NoSuchDb": Quality.bad,
    }
    reasons = {p.address: p.reason for p in read.problems}
    assert reasons["DB1.DBW200"].startswith("0x05 address out of range")
    assert reasons["DB7.DBW0"].startswith("0x0A object does not exist")


async def test_a_cpu_in_stop_is_refused_when_run_is_required_and_read_otherwise() -> None:
    async with c_snap7(images(c_snap7_timers=True)) as server:
        await server.cpu("stop")
        strict = plc(bridge(server.port, [{"name": "W", "address": "DB1.DBW2"}], require_run=True))
        with pytest.raises(DeviceRefused) as refused:
            await strict.connect()
        lenient = plc(bridge(server.port, [{"name": "W", "address": "DB1.DBW2"}]))
        await lenient.connect()
        try:
            read = await lenient.read("default")
        finally:
            await lenient.close()
        await server.cpu("run")
        await strict.connect()
        await strict.close()
    assert "the CPU is in STOP (require_run is set): switch it to RUN" in str(refused.value)
    assert read.samples[0].value == 0xBEEF


async def test_a_logo_reads_and_writes_v_memory_through_its_tsaps() -> None:
    tags: list[dict[str, Any]] = [
        {"name": "Word", "address": "VW2"},
        {"name": "Bit", "address": "V0.0", "writable": True},
        {"name": "Byte", "address": "VB1", "writable": True},
    ]
    async with c_snap7(images(c_snap7_timers=True)) as server:
        device = plc(bridge(server.port, tags, cpu="LOGO"))
        assert device.endpoint == f"s7 127.0.0.1:{server.port} tsap 0100/0200"
        await device.connect()
        try:
            read = await device.read("default")
            await device.write("Bit", False)
            await device.write("Byte", 0x11)
            db = await server.area("DB1")
        finally:
            await device.close()
    assert {s.name: s.value for s in read.samples} == {"Word": 0xBEEF, "Bit": True, "Byte": 0xAB}
    assert db[0:2] == bytes([0b1111_0110, 0x11])
