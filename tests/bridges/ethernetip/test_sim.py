"""The driver against the demo's Logix-like server: batching, fragments, fallbacks, refusals, CIP statuses, tag cache.

The server is ours too, so what it proves about the protocol is checked by pycomm3 and pylogix in
test_sim_interop.py and by cpppo in test_cpppo.py; here it stands in for the controller behaviours
cpppo cannot show (connection limits, slots, Logix STRING, tag lists, status codes on demand).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from bridges.ethernetip import EnipDevice
from bridges.sim.ethernetip_server import LogixServer, SimTag, SimUdt
from model.bridges.ethernetip import EthernetIpDevice
from model.envelope import Quality
from uns.errors import DeviceRefused, ReadError

pytestmark = pytest.mark.timeout(30)

_MSP, _FRAGMENTED = 0x0A, 0x52


def _device(
    server: LogixServer, tags: Sequence[Mapping[str, object]], data_dir: Path | None = None, **extra: object
) -> EnipDevice:
    host, port = server.endpoint
    config = EthernetIpDevice.model_validate({"id": "plc", "host": host, "port": port, "tags": tags, **extra})
    return EnipDevice(bridge="enip-test", config=config, data_dir=data_dir)


def _dints(count: int) -> list[SimTag]:
    return [SimTag(f"T{i}", "DINT", i * 3) for i in range(count)]


@pytest.mark.parametrize(("size", "packets"), [(4002, 1), (504, 5)])
async def test_reads_are_batched_into_as_few_packets_as_the_connection_allows(size: int, packets: int) -> None:
    async with LogixServer(tags=_dints(200)) as server:
        device = _device(server, [{"name": f"t{i}", "address": f"T{i}", "type": "DINT"} for i in range(200)],
                         connection_size=size, tag_cache=False)  # fmt: skip
        await device.connect()
        try:
            assert device.mode == ("large connected" if size > 511 else "connected")
            reading = await device.read("default")
        finally:
            await device.close()
    assert [sample.value for sample in reading.samples] == [i * 3 for i in range(200)]
    assert server.served[_MSP] == packets


async def test_without_large_forward_open_a_classic_connection_is_used_and_without_any_unconnected() -> None:
    async with LogixServer(tags=_dints(3), large_forward_open=False) as server:
        device = _device(server, [{"name": "t2", "address": "T2", "type": "DINT"}], tag_cache=False)
        await device.connect()
        assert device.mode == "connected"
        assert (await device.read("default")).samples[0].value == 6
        await device.close()
    async with LogixServer(tags=_dints(3), forward_open=False, multiple_service=False) as server:
        device = _device(server, [{"name": f"t{i}", "address": f"T{i}", "type": "DINT"} for i in range(3)],
                         tag_cache=False)  # fmt: skip
        await device.connect()
        assert device.mode == "unconnected"
        assert [s.value for s in (await device.read("default")).samples] == [0, 3, 6]
        await device.close()


@pytest.mark.parametrize("connected", [True, False])
async def test_only_requests_to_the_controller_are_routed_not_forward_open_and_close(connected: bool) -> None:
    async with LogixServer(tags=_dints(1), slot=3) as server:
        device = _device(server, [{"name": "t", "address": "T0", "type": "DINT"}], tag_cache=False, route=[[1, 3]],
                         connected=connected)  # fmt: skip
        await device.connect()
        assert (await device.read("default")).samples[0].value == 0
        await device.close()
    # Forward Open/Close go to the Connection Manager of the module at `host`, the route in their
    # connection path; only unconnected requests for the controller travel inside an Unconnected Send
    assert (server.wrapped[0x5B], server.wrapped[0x54], server.wrapped[0x4E]) == (0, 0, 0)
    assert (server.wrapped[0x01], server.wrapped[0x4C]) == ((0, 0) if connected else (1, 1))
    assert len(server.forward_opens) == int(connected)


async def test_the_connection_outlives_the_slowest_poll_group() -> None:
    async with LogixServer(tags=_dints(1)) as server:
        device = _device(server, [{"name": "t", "address": "T0", "type": "DINT", "poll": "slow"}], tag_cache=False,
                         poll_groups={"slow": 60.0})  # fmt: skip
        await device.connect()
        await device.close()
    # idle timeout = RPI x 32 (multiplier code 3) = 4 x the slowest interval, so the controller keeps it
    assert [(fo.rpi_us, fo.t_o_size) for fo in server.forward_opens] == [(7_500_000, 4002)]


async def test_an_array_larger_than_a_message_is_read_in_fragments() -> None:
    values = [float(i) / 4 for i in range(1500)]
    async with LogixServer(tags=[SimTag("Trend", "REAL", list(values), dims=1500)]) as server:
        device = _device(server, [{"name": "trend", "address": "Trend[0]{1500}", "type": "REAL"}], tag_cache=False)
        await device.connect()
        try:
            reading = await device.read("default")
        finally:
            await device.close()
    assert reading.samples[0].value == values
    assert server.served[_FRAGMENTED] == 2  # 6,000 bytes over a 4,002-byte connection


async def test_the_connection_limit_is_a_refusal_that_says_what_to_check() -> None:
    async with LogixServer(tags=_dints(1), max_connections=1) as server:
        first = _device(server, [{"name": "t", "address": "T0", "type": "DINT"}], tag_cache=False)
        second = _device(server, [{"name": "t", "address": "T0", "type": "DINT"}], tag_cache=False)
        await first.connect()
        with pytest.raises(DeviceRefused) as refused:
            await second.connect()
        assert "Large Forward Open refused: 0x01 connection failure, extended 0x0113 out of connections" in str(
            refused.value
        )
        assert "close other clients (HMIs, historians, Studio 5000)" in str(refused.value)
        await first.close()  # Forward Close frees the connection
        await second.connect()
        assert (await second.read("default")).samples[0].value == 0
        await second.close()


async def test_a_wrong_slot_is_refused_naming_the_route() -> None:
    async with LogixServer(tags=_dints(1), slot=2) as server:
        wrong = _device(server, [{"name": "t", "address": "T0", "type": "DINT"}], tag_cache=False)
        with pytest.raises(DeviceRefused) as refused:
            await wrong.connect()
        assert "extended 0x0312 link address not valid" in str(refused.value)
        assert "check 'route' (now [1, 0]" in str(refused.value)
        unconnected = _device(server, [{"name": "t", "address": "T0", "type": "DINT"}], tag_cache=False,
                              connected=False)  # fmt: skip
        with pytest.raises(DeviceRefused, match="Unconnected Send refused: 0x01 connection failure, extended 0x0312"):
            await unconnected.connect()
        right = _device(server, [{"name": "t", "address": "T0", "type": "DINT"}], tag_cache=False, route=[[1, 2]])
        await right.connect()
        await right.close()


@pytest.mark.parametrize(
    ("status", "extended", "reason"),
    [
        (0x04, (), "0x04 path segment error (tag does not exist or its name is malformed)"),
        (0x05, (0,), "0x05 path destination unknown (no such tag, member or object), extended 0x0000"),
        (0x08, (), "0x08 service not supported"),
        (0x0F, (), "0x0F privilege violation (external access is read only or none)"),
        (0x13, (), "0x13 not enough data (request too short)"),
        (0x1E, (), "0x1E embedded service error"),
        (0x26, (), "0x26 path size invalid (too many or too few path words)"),
        (0xFF, (0x2105,), "0xFF general error (see extended status), extended 0x2105 access beyond the end of the tag"),
    ],
)
async def test_a_cip_status_marks_just_that_tag_bad_naming_tag_and_status(
    status: int, extended: tuple[int, ...], reason: str
) -> None:
    async with LogixServer(tags=_dints(3)) as server:
        server.faults["T1"] = (status, extended)
        device = _device(server, [{"name": f"t{i}", "address": f"T{i}", "type": "DINT"} for i in range(3)],
                         tag_cache=False)  # fmt: skip
        await device.connect()
        try:
            reading = await device.read("default")
        finally:
            await device.close()
    assert [(s.value, s.quality) for s in reading.samples] == [
        (0, Quality.good),
        (None, Quality.bad),
        (6, Quality.good),
    ]
    assert [(p.address, tuple(p.tags), p.reason) for p in reading.problems] == [("T1", ("t1",), reason)]


async def test_writes_are_typed_strings_included_and_a_refusal_names_the_address() -> None:
    tags = [SimTag("Recipe", "STRING", "old"), SimTag("Program:Main.Speed", "INT", 0), SimTag("Locked", "REAL", 1.0)]
    async with LogixServer(tags=tags) as server:
        server.faults["Locked"] = (0x0F, ())
        device = _device(server, [
            {"name": "recipe", "address": "Recipe", "type": "STRING", "writable": True},
            {"name": "speed", "address": "Program:Main.Speed", "type": "INT", "writable": True},
            {"name": "locked", "address": "Locked", "type": "REAL", "writable": True},
        ])  # fmt: skip
        await device.connect()
        try:
            await device.write("recipe", "IPA-70 flush")
            await device.write("speed", -1200)
            with pytest.raises(ReadError, match=r"Locked: write refused: 0x0F privilege violation"):
                await device.write("locked", 2.0)
            reading = await device.read("default")
        finally:
            await device.close()
    assert server.tags["Recipe"].value == "IPA-70 flush"
    assert server.tags["Program:Main.Speed"].value == -1200
    assert [s.value for s in reading.samples[:2]] == ["IPA-70 flush", -1200]


def _program(flow_type: str = "REAL") -> tuple[list[SimTag], list[SimUdt]]:
    udt = SimUdt("Pump_UDT", (("Flow", flow_type), ("Runs", "DINT")))
    return [SimTag("Pump", "Pump_UDT", {"Flow": 1.5 if flow_type == "REAL" else 2, "Runs": 4}),
            SimTag("Program:Main.Mode", "DINT", 1)], [udt]  # fmt: skip


async def test_the_tag_list_is_uploaded_once_cached_and_refreshed_when_the_program_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridges.ethernetip")
    tags, udts = _program()
    config = [
        {"name": "flow", "address": "Pump.Flow", "type": "REAL"},
        {"name": "mode", "address": "Program:Main.Mode", "type": "DINT"},
    ]
    async with LogixServer(tags=tags, udts=udts) as server:
        device = _device(server, config, data_dir=tmp_path)
        await device.connect()
        assert device.symbols is not None
        assert device.symbols.type_of("Pump.Flow") == "REAL"
        assert (tmp_path / "plc.tags.json").exists()
        await device.close()

        again = _device(server, config, data_dir=tmp_path)  # a restart: the cache is on disk
        await again.connect()
        await again.close()
        assert caplog.text.count("uploaded tag list: 2 tags, 1 structures") == 1
        assert "tag list unchanged since cached (2 tags)" in caplog.text

        tags, udts = _program(flow_type="DINT")  # a download: same tags, but Pump_UDT.Flow is now a DINT
        server.define(tags, udts)
        changed = _device(server, config, data_dir=tmp_path)
        await changed.connect()
        try:
            reading = await changed.read("default")
        finally:
            await changed.close()
    assert "a structure was redefined since the tag list was cached" in caplog.text
    assert caplog.text.count("uploaded tag list: 2 tags, 1 structures") == 2
    assert [p.reason for p in reading.problems] == ["controller has Pump.Flow as DINT, the config declares REAL"]
    assert reading.samples[1].value == 1


async def test_a_micro800_is_read_without_route_or_batching() -> None:
    async with LogixServer(tags=_dints(3), product_name="2080-LC50-48QWB") as server:
        device = _device(server, [{"name": f"t{i}", "address": f"T{i}", "type": "DINT"} for i in range(3)],
                         family="micro800", tag_cache=False)  # fmt: skip
        assert device.endpoint.endswith("route none (Micro800)")
        await device.connect()
        try:
            reading = await device.read("default")
        finally:
            await device.close()
    assert [s.value for s in reading.samples] == [0, 3, 6]
    assert server.served[_MSP] == 0


async def test_a_micro800_configured_as_logix_is_recognised_by_its_identity_and_read_tag_by_tag() -> None:
    async with LogixServer(tags=_dints(3), product_name="2080-LC30-24QWB") as server:
        device = _device(server, [{"name": f"t{i}", "address": f"T{i}", "type": "DINT"} for i in range(3)],
                         tag_cache=False)  # fmt: skip
        await device.connect()
        try:
            reading = await device.read("default")
        finally:
            await device.close()
    assert device.product == "2080-LC30-24QWB"
    assert [s.value for s in reading.samples] == [0, 3, 6]
    assert server.served[_MSP] == 0


async def test_a_program_tag_added_by_a_download_refreshes_the_cached_list(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridges.ethernetip")
    tags, udts = _program()
    config = [{"name": "mode", "address": "Program:Main.Mode", "type": "DINT"}]
    async with LogixServer(tags=tags, udts=udts) as server:
        for added in (False, True):
            if added:
                server.define([*tags, SimTag("Program:Main.Recipe", "STRING", "new")], udts)
            device = _device(server, config, data_dir=tmp_path)
            await device.connect()
            await device.close()
    symbols = device.symbols
    assert symbols is not None
    assert symbols.type_of("Program:Main.Recipe") == "STRING"
    assert caplog.text.count("uploaded tag list: 2 tags") == 1
    assert caplog.text.count("uploaded tag list: 3 tags") == 1
