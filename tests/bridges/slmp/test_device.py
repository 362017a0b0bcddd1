"""SlmpPlc against virtual-plc in another process: every device and type, 3E/4E, Q/L/iQ-R, writes."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pytest
from slmp import AsyncSlmpClient, SlmpBoundaryBehaviorWarning, SlmpTarget, write_typed
from virtual_plc import Server  # type: ignore[import-untyped]  # no py.typed in virtual-plc 0.3.0

from bridges.plc.device import GroupRead
from bridges.slmp.device import SlmpPlc
from bridges.slmp.plan import BatchRead, BlockRead, RandomRead
from model.bridges.slmp import SlmpDevice
from model.envelope import Quality
from tests.bridges.slmp.block_read import block_reads, requests_seen
from tests.bridges.slmp.counterpart import VirtualPlc, virtual_plc
from uns.errors import BridgeError, DeviceRefused, ReadError

_PROFILES = {"Q": "melsec:qnu", "L": "melsec:lcpu", "iQ-R": "melsec:iq-r"}


def plc(server: VirtualPlc, series: str, tags: list[dict[str, object]], **fields: object) -> SlmpPlc:
    """An SlmpPlc for ``server`` with ``tags`` (timeouts short: the counterpart is local)."""
    config = SlmpDevice.model_validate(
        {"id": "plc1", "host": server.host, "port": server.port, "series": series, "timeout_s": 1.0,
         "connect_timeout_s": 1.0, "tags": tags, **fields}
    )  # fmt: skip
    return SlmpPlc(bridge="slmp-test", config=config)


async def library_client(server: VirtualPlc, series: str) -> AsyncSlmpClient:
    """plc-comm-slmp's own client, connected: the reference writer the driver's reads are checked against."""
    client = AsyncSlmpClient(
        server.host, server.port, transport="tcp", default_target=SlmpTarget(0, 0xFF, 0x3FF, 0),
        plc_profile=_PROFILES[series], timeout=2.0,
    )  # fmt: skip
    await client.connect()
    return client


def values(read: GroupRead) -> dict[str, object]:
    """Metric name -> value of a group read."""
    return {sample.name: sample.value for sample in read.samples}


_TAGS: list[dict[str, object]] = [
    {"name": "d/int16", "address": "D100"},
    {"name": "d/uint16", "address": "D101", "type": "uint16"},
    {"name": "d/int32", "address": "D102", "type": "int32"},
    {"name": "d/uint32", "address": "D104", "type": "uint32"},
    {"name": "d/float32", "address": "D106", "type": "float32"},
    {"name": "d/float64", "address": "D200", "type": "float64"},
    {"name": "d/string", "address": "D300", "type": "string", "length": 6},
    {"name": "d/wstring", "address": "D320", "type": "wstring", "length": 6},
    {"name": "d/bit3", "address": "D101.3", "type": "bool"},
    {"name": "w/hex", "address": "W1A0", "type": "int32"},
    {"name": "r/word", "address": "R7"},
    {"name": "zr/hex", "address": "ZR126976", "type": "float32"},
    {"name": "sd/state", "address": "SD203", "type": "uint16"},
    {"name": "x/hex", "address": "X1F", "type": "bool"},
    {"name": "x/off", "address": "X1E", "type": "bool"},
    {"name": "y/hex", "address": "Y2A", "type": "bool"},
    {"name": "m/100", "address": "M100", "type": "bool"},
    {"name": "l/5", "address": "L5", "type": "bool"},
    {"name": "b/hex", "address": "B1F", "type": "bool"},
    {"name": "sm/400", "address": "SM400", "type": "bool"},
    {"name": "d/far", "address": "D5000", "type": "int16"},
]


async def _seed(client: AsyncSlmpClient) -> None:
    """The values of ``_TAGS``, written by plc-comm-slmp's typed helpers and raw words built here."""
    await write_typed(client, "D100", "S", -12345)
    await write_typed(client, "D101", "U", 0xFF08)
    await write_typed(client, "D102", "L", -123456789)
    await write_typed(client, "D104", "D", 3456789012)
    await write_typed(client, "D106", "F", -1234.5)
    await write_typed(client, "W1A0", "L", 70000)
    await write_typed(client, "R7", "S", 7)
    with warnings.catch_warnings():  # plc-comm-slmp warns that iQ-R may not range-check R/ZR writes
        warnings.simplefilter("ignore", SlmpBoundaryBehaviorWarning)
        await write_typed(client, "ZR126976", "F", 21.5)
    await write_typed(client, "D5000", "S", -1)
    # float64: IEEE little-endian bytes, low word at the lowest address
    await client.write_devices("D200", list(struct.unpack("<4H", struct.pack("<d", 6.02214076e23))), bit_unit=False)
    # String as GX Works stores it: first character in the low byte of the first word
    await client.write_devices("D300", [ord("P") | ord("U") << 8, ord("M") | ord("P") << 8, ord("7"), 0, 0, 0],
                               bit_unit=False)  # fmt: skip
    await client.write_devices("D320", [ord(c) for c in "Pümpe"] + [0], bit_unit=False)
    for address in ("X1F", "Y2A", "M100", "L5", "B1F", "SM400"):
        await write_typed(client, address, "BIT", True)


_EXPECTED: dict[str, object] = {
    "d/int16": -12345, "d/uint16": 0xFF08, "d/int32": -123456789, "d/uint32": 3456789012, "d/float32": -1234.5,
    "d/float64": 6.02214076e23, "d/string": "PUMP7", "d/wstring": "Pümpe", "d/bit3": True, "w/hex": 70000,
    "r/word": 7, "zr/hex": 21.5, "sd/state": 1, "x/hex": True, "x/off": False, "y/hex": True, "m/100": True,
    "l/5": True, "b/hex": True, "sm/400": True, "d/far": -1,
}  # fmt: skip


@pytest.mark.parametrize(("series", "frame"), [("Q", "3E"), ("Q", "4E"), ("L", "3E"), ("iQ-R", "4E"), ("iQ-R", "3E")])
async def test_every_device_and_type_reads_what_the_reference_client_wrote(
    tmp_path: Path, series: str, frame: str
) -> None:
    with virtual_plc(tmp_path, profile=series) as server:
        client = await library_client(server, series)
        try:
            await _seed(client)
        finally:
            await client.close()
        device = plc(server, series, _TAGS, frame=frame)
        await device.connect()
        try:
            read = await device.read("default")
        finally:
            await device.close()
    assert values(read) == _EXPECTED
    assert read.problems == []
    assert all(sample.quality is Quality.good for sample in read.samples)
    kinds = {type(request) for request in device.plans["default"]}
    # short runs went into random reads; the long ones (float64 + strings) into block reads, which
    # virtual-plc lacks (0xC059) on iQ-R, and Q/L built-in ports never have: batch reads either way
    assert kinds == {RandomRead, BatchRead}


async def test_iqr_block_reads_refused_become_batch_reads(tmp_path: Path) -> None:
    text = [ord("A") | ord("B") << 8, ord("C") | ord("D") << 8, ord("E")]
    with virtual_plc(tmp_path, seed={"D": {"200": text}, "M": {"32": [1]}}) as server:
        tags: list[dict[str, object]] = [
            {"name": "s", "address": "D200", "type": "string", "length": 10},
            {"name": "m", "address": "M32", "type": "bool"},
            {"name": "m2", "address": "M300", "type": "bool"},
            {"name": "d", "address": "D1000", "type": "float64"},
        ]
        device = plc(server, "iQ-R", tags, max_gap=20)
        assert [type(r) for r in device.plans["default"]] == [RandomRead, BlockRead]
        await device.connect()
        try:
            read = await device.read("default")
        finally:
            await device.close()
    assert values(read) == {"s": "ABCDE", "m": True, "m2": False, "d": 0.0}
    assert [type(r) for r in device.plans["default"]] == [RandomRead, BatchRead, BatchRead]
    assert read.problems == []


async def test_a_wrong_series_is_refused_at_connect_naming_what_to_check(tmp_path: Path) -> None:
    with virtual_plc(tmp_path, profile="iQ-R") as server:
        device = plc(server, "Q", [{"name": "a", "address": "D0"}])
        with pytest.raises(DeviceRefused, match=r"0xC059.*series") as refused:
            await device.connect()
        await device.close()
    assert "SD203" in str(refused.value)


async def test_an_address_past_the_device_range_marks_only_its_tag_bad(tmp_path: Path) -> None:
    with virtual_plc(tmp_path, profile="Q", seed={"D": {"1990": [5, 6]}}, limits=["D:0-1999"]) as server:
        tags: list[dict[str, object]] = [
            {"name": "ok1", "address": "D1990"},
            {"name": "past", "address": "D2000"},
            {"name": "ok2", "address": "D1991"},
        ]
        device = plc(server, "Q", tags, max_gap=16)
        await device.connect()
        try:
            first = await device.read("default")
            second = await device.read("default")
        finally:
            await device.close()
    for read in (first, second):
        assert values(read) == {"ok1": 5, "ok2": 6, "past": None}
        [problem] = read.problems
        assert problem.address == "D2000"
        assert problem.tags == ("past",)
        assert "0xC056" in problem.reason
        assert "past the device's last number" in problem.reason
    assert len(device.plans["default"]) == 3  # split once, tag by tag, and kept so


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (0xC051, "too many word points"),
        (0xC05B, "cannot read or write this device"),
        (0xC05C, "request content error"),
        (0x4031, "outside the CPU's device allocation"),
        (0x4567, "not in our table"),
    ],
)
async def test_an_address_end_code_is_a_tag_problem_naming_address_and_meaning(
    tmp_path: Path, code: int, meaning: str
) -> None:
    faults = [{"match": {"command": 0x0403}, "times": 1000, "action": {"type": "bad_end_code", "code": code}}]
    with virtual_plc(tmp_path, profile="iQ-R", faults=faults, seed={"M": {"16": [1]}}) as server:
        tags: list[dict[str, object]] = [
            {"name": "t", "address": "D7"},
            {"name": "m", "address": "M16", "type": "bool"},
        ]
        device = plc(server, "iQ-R", tags)
        await device.connect()
        try:
            read = await device.read("default")
        finally:
            await device.close()
    assert values(read) == {"t": None, "m": None}
    assert {p.address for p in read.problems} == {"D7", "M16"}
    for problem in read.problems:
        assert f"0x{code:04X}" in problem.reason
        assert meaning in problem.reason


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(0x4A01, "route"), (0xC050, "data code to binary"), (0xC201, "remote password"), (0xC059, "series")],
)
async def test_a_route_or_frame_end_code_refuses_the_device(tmp_path: Path, code: int, meaning: str) -> None:
    faults = [{"match": {"command": 0x0403}, "action": {"type": "bad_end_code", "code": code}}]
    with virtual_plc(tmp_path, faults=faults) as server:
        device = plc(server, "iQ-R", [{"name": "t", "address": "D7"}])
        await device.connect()
        try:
            with pytest.raises(DeviceRefused, match=meaning) as refused:
                await device.read("default")
        finally:
            await device.close()
    assert f"0x{code:04X}" in str(refused.value)
    assert "random read of D7" in str(refused.value)


async def test_bit_devices_are_written_as_bits_and_words_as_words(tmp_path: Path) -> None:
    tags: list[dict[str, object]] = [
        {"name": "run", "address": "M5", "type": "bool", "writable": True},
        {"name": "y", "address": "Y1F", "type": "bool", "writable": True},
        {"name": "sp", "address": "D10", "type": "float32", "writable": True},
        {"name": "name", "address": "D20", "type": "string", "length": 4, "writable": True},
        {"name": "ro", "address": "D30"},
    ]
    with virtual_plc(tmp_path, profile="Q", seed={"M": {"0": [1, 1, 1, 1, 1, 0, 1, 1]}}) as server:
        device = plc(server, "Q", tags)
        await device.connect()
        client = await library_client(server, "Q")
        try:
            await device.write("run", True)
            await device.write("y", True)
            await device.write("sp", 42.25)
            await device.write("name", "ABC")
            with pytest.raises(BridgeError, match=r"ro \(D30\) is not writable"):
                await device.write("ro", 1)
            with pytest.raises(BridgeError, match=r"sp \(D10\).*float32 needs a number"):
                await device.write("sp", "fast")
            with pytest.raises(BridgeError, match=r"does not fit 4 words"):
                await device.write("name", "ABCDEFGHIJ")
            bits = await client.read_devices("M0", 8, bit_unit=True)
            y = await client.read_devices("Y1F", 1, bit_unit=True)
            words = await client.read_devices("D10", 2, bit_unit=False)
            text = await client.read_devices("D20", 4, bit_unit=False)
            read = await device.read("default")
        finally:
            await client.close()
            await device.close()
    assert bits == [True] * 8  # M5 set; its neighbours (one of them off in the seed) as they were
    assert y == [True]
    assert struct.unpack("<f", struct.pack("<2H", *words))[0] == 42.25
    assert text == [ord("A") | ord("B") << 8, ord("C"), 0, 0]
    assert values(read) | {"ro": 0} == {"run": True, "y": True, "sp": 42.25, "name": "ABC", "ro": 0}


async def test_a_refused_write_names_the_address_and_end_code(tmp_path: Path) -> None:
    with virtual_plc(tmp_path, profile="Q", limits=["D:0-99"]) as server:
        device = plc(server, "Q", [{"name": "sp", "address": "D99", "type": "int32", "writable": True}])
        await device.connect()
        try:
            with pytest.raises(ReadError, match=r"D99: write refused: end code 0xC056"):
                await device.write("sp", 5)
        finally:
            await device.close()


async def test_fx5_numbers_x_and_y_in_octal(tmp_path: Path) -> None:
    # iQ-F speaks the Q/L device format (virtual-plc's Q profile); only the notation differs
    with virtual_plc(tmp_path, profile="Q", seed={"X": {"15": [1]}, "Y": {"8": [1]}, "D": {"0": [5]}}) as server:
        tags: list[dict[str, object]] = [
            {"name": "x17", "address": "X17", "type": "bool"},
            {"name": "x16", "address": "X16", "type": "bool"},
            {"name": "y10", "address": "Y10", "type": "bool"},
            {"name": "d0", "address": "D0"},
        ]
        device = plc(server, "FX5", tags)
        await device.connect()
        try:
            read = await device.read("default")
        finally:
            await device.close()
    assert values(read) == {"x17": True, "x16": False, "y10": True, "d0": 5}
    assert device.endpoint.startswith(f"slmp tcp {server.host}:{server.port} FX5 3E")


async def test_block_reads_meet_a_plc_that_has_them_within_60_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    with block_reads(monkeypatch), Server(profile="iQ-R") as server:
        for i in range(70):
            server.memory.write_words("D", i * 20, [ord("A") + i % 26 | ord("a") + i % 26 << 8, ord("0") + i % 10])
        server.memory.write_bits("M", 16, [0, 1])
        server.memory.write_words("W", 0x100, [0xBEEF] * 6)
        tags: list[dict[str, object]] = [
            {"name": f"d{i}", "address": f"D{i * 20}", "type": "string", "length": 5} for i in range(70)
        ]
        tags += [
            {"name": "w", "address": "W100", "type": "float64"},
            {"name": "w5", "address": "W105", "type": "uint16"},
            {"name": "m17", "address": "M17", "type": "bool"},
            {"name": "m99", "address": "M99", "type": "bool"},
            {"name": "m98", "address": "M98", "type": "bool"},
        ]
        server.memory.write_bits("M", 99, [1])
        device = plc(VirtualPlc(*server.address), "iQ-R", tags)
        await device.connect()
        try:
            read = await device.read("default")
        finally:
            await device.close()
    # 70 strings, the W run and the M run (M16..M111: 6 words of bits) as blocks, 60 a request at most
    assert requests_seen == [60, 12]
    assert [type(r) for r in device.plans["default"]] == [BlockRead, BlockRead]
    got = values(read)
    assert [got[f"d{i}"] for i in (0, 3, 69)] == ["Aa0", "Dd3", "Rr9"]
    assert all(got[f"d{i}"] == chr(65 + i % 26) + chr(97 + i % 26) + str(i % 10) for i in range(70))
    assert got["w"] == struct.unpack("<d", struct.pack("<4H", *[0xBEEF] * 4))[0]
    assert (got["w5"], got["m17"], got["m98"], got["m99"]) == (0xBEEF, True, False, True)
    assert read.problems == []
