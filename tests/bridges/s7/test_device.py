"""S7Plc against snap7's pure-Python ``Server`` in-process: every type read, writes, per-item errors, planning."""

from __future__ import annotations

import struct

import pytest

from bridges.s7.pdu import build_read
from model.envelope import Quality
from tests.bridges.s7.servers import ALL_TYPES, bridge, images, plc, python_server, tag_specs
from uns.errors import BridgeError, ReadError


async def test_every_type_and_area_reads_its_value_in_one_request() -> None:
    areas = images()
    async with python_server(areas) as port:
        device = plc(bridge(port, tag_specs()))
        await device.connect()
        try:
            read = await device.read("default")
            requests = len(device.plan("default").requests)
        finally:
            await device.close()
    values = {sample.name: sample.value for sample in read.samples}
    assert values == {t["name"]: t["value"] for t in ALL_TYPES}
    assert not read.problems
    assert device.pdu_size == 480  # snap7's server caps what we ask (960)
    assert requests == 1  # 19 tags in 6 areas: DB1 merged into one item, all items in one request


async def test_writes_change_only_their_bytes_and_read_back() -> None:
    areas = images()
    before = {name: bytes(data) for name, data in areas.items()}
    # bit writes are checked against C Snap7: snap7's Python server writes a bit write's byte whole
    writable = [t for t in ALL_TYPES if t["write"] is not None and not isinstance(t["value"], bool)]
    async with python_server(areas) as port:
        device = plc(bridge(port, tag_specs(writable=True)))
        await device.connect()
        try:
            for tag in writable:
                await device.write(tag["name"], tag["write"])
            read = await device.read("default")
        finally:
            await device.close()
    values = {sample.name: sample.value for sample in read.samples}
    for tag in writable:
        assert values[tag["name"]] == pytest.approx(tag["write"]), tag["name"]
    # a STRING write leaves the declared maximum (byte 26) alone
    assert areas["DB1"][26] == 10
    assert areas["DB1"][27:30] == b"\x03by"
    assert areas["DB1"][0] == before["DB1"][0]


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("Byte", 300, "300 does not fit BYTE (0..255)"),
        ("Int", 1.5, "INT needs a whole number"),
        ("String", "x" * 11, "11 characters exceed STRING[10]"),
        ("String", "€", "outside Latin-1"),
        ("Bool/Off", 1, "BOOL needs true or false"),
        ("Counter", 1000, "a counter holds 0..999"),
        ("Input", True, "is not writable"),
    ],
)
async def test_a_value_that_does_not_fit_is_refused_naming_device_tag_and_address(
    name: str, value: object, reason: str
) -> None:
    areas = images()
    tags = tag_specs(writable=True)
    async with python_server(areas) as port:
        device = plc(bridge(port, tags))
        await device.connect()
        try:
            with pytest.raises(BridgeError) as raised:
                await device.write(name, value)  # type: ignore[arg-type]
        finally:
            await device.close()
    message = str(raised.value)
    assert reason in message
    assert "device plc" in message
    address = next(t["address"] for t in ALL_TYPES if t["name"] == name)
    assert address in message


async def test_item_errors_mark_only_their_tags_and_a_failed_merged_range_is_split() -> None:
    areas = images()
    tags = [
        {"name": "Good", "address": "DB1.DBW2"},
        {"name": "PastTheEnd", "address": "DB1.DBW78"},  # DB1 has 80 bytes: 78..79 is fine
        {"name": "Beyond", "address": "DB1.DBD88", "type": "DINT"},  # 8 bytes after DB1's end: merged with 78
        {"name": "NoSuchDb", "address": "DB9.DBW0"},
    ]
    async with python_server(areas) as port:
        device = plc(bridge(port, tags, max_gap=16))
        await device.connect()
        try:
            read = await device.read("default")
            again = await device.read("default")
        finally:
            await device.close()
    for result in (read, again):
        quality = {s.name: s.quality for s in result.samples}
        assert quality == {"Good": Quality.good, "PastTheEnd": Quality.good, "Beyond": Quality.bad,
                           "NoSuchDb": Quality.bad}  # fmt: skip
        problems = {p.address: p.reason for p in result.problems}
        assert set(problems) == {"DB1.DBD88", "DB9.DBW0"}
        assert problems["DB1.DBD88"].startswith("0x05 address out of range: check the DB is that long")
        assert "Optimized block access" in problems["DB1.DBD88"]
        assert problems["DB9.DBW0"].startswith("0x0A object does not exist")
    assert {s.name: s.value for s in read.samples}["PastTheEnd"] == 0


async def test_a_write_the_plc_refuses_raises_read_error_with_the_address_and_code() -> None:
    async with python_server(images()) as port:
        device = plc(bridge(port, [{"name": "Far", "address": "DB9.DBW0", "writable": True}]))
        await device.connect()
        try:
            with pytest.raises(ReadError) as raised:
                await device.write("Far", 1)
        finally:
            await device.close()
    assert raised.value.address == "DB9.DBW0"
    assert "write refused" in str(raised.value)


async def test_a_bad_string_header_is_a_tag_problem_naming_the_offset() -> None:
    areas = images()
    areas["DB1"][27] = 12  # current length 12 > declared maximum 10
    async with python_server(areas) as port:
        device = plc(bridge(port, [{"name": "S", "address": "DB1.DBB26", "type": "STRING", "length": 10}]))
        await device.connect()
        try:
            read = await device.read("default")
        finally:
            await device.close()
    assert read.samples[0].quality == Quality.bad
    assert "STRING header at byte 27: current length 12 exceeds its maximum 10" in read.problems[0].reason


async def test_many_tags_are_planned_within_the_item_limit_and_all_read() -> None:
    db = bytearray(2000)
    tags = []
    for index in range(60):  # far apart: no merging, 60 items
        offset = index * 30
        struct.pack_into(">i", db, offset, index * 1000 - 7)
        tags.append({"name": f"T{index}", "address": f"DB1.DBD{offset}", "type": "DINT"})
    async with python_server({"DB1": db}) as port:
        device = plc(bridge(port, tags, max_gap=0, max_items=20, pdu_size=240))
        await device.connect()
        try:
            read = await device.read("default")
            plan = device.plan("default")
        finally:
            await device.close()
    assert {s.name: s.value for s in read.samples} == {f"T{i}": i * 1000 - 7 for i in range(60)}
    assert device.pdu_size == 240
    assert all(len(request.chunks) <= 20 for request in plan.requests)
    assert all(len(build_read(1, request.chunks)) <= 240 for request in plan.requests)
    assert len(plan.requests) == 4  # a 240-byte request holds 19 items: 19 + 19 + 19 + 3
