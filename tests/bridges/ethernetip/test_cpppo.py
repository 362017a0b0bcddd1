"""The EtherNet/IP driver against cpppo's server (another author's reading of the spec) in a child process.

Every Logix type, arrays with element counts, member-style and program-scoped names, Multiple
Service Packet batching over a Large Forward Open, typed writes, per-tag CIP errors, and a route
the server refuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from bridges.ethernetip import EnipDevice
from model.bridges.ethernetip import EthernetIpDevice
from model.envelope import Quality
from tests.bridges.ethernetip.counterpart import cpppo
from uns.errors import BridgeError, DeviceRefused

TAGS = [
    "Flag=BOOL", "Small=SINT", "Word=INT", "Count=DINT", "Big=LINT", "Byte=USINT", "UWord=UINT",
    "UCount=UDINT", "UBig=ULINT", "Temp=REAL[4]", "Precise=LREAL", "Motor.Speed=REAL", "Program:Main.X=INT",
]  # fmt: skip

pytestmark = pytest.mark.timeout(60)


def _device(port: int, tags: Sequence[Mapping[str, object]], **extra: object) -> EnipDevice:
    config = EthernetIpDevice.model_validate(
        {"id": "plc", "host": "127.0.0.1", "port": port, "timeout_s": 2.0, "tags": tags, **extra}
    )
    return EnipDevice(bridge="enip-test", config=config)


async def test_every_type_written_then_read_back_in_one_batch() -> None:
    writes: list[tuple[str, str, str, object]] = [
        ("flag", "Flag", "BOOL", True),
        ("small", "Small", "SINT", -100),
        ("word", "Word", "INT", -30000),
        ("count", "Count", "DINT", -2_000_000_000),
        ("big", "Big", "LINT", -(2**62)),
        ("byte", "Byte", "USINT", 250),
        ("uword", "UWord", "UINT", 65000),
        ("ucount", "UCount", "UDINT", 4_000_000_000),
        ("ubig", "UBig", "ULINT", 2**63 + 5),
        ("temp2", "Temp[2]", "REAL", 21.5),
        ("precise", "Precise", "LREAL", 1.0000000001),
        ("speed", "Motor.Speed", "REAL", 1450.25),
        ("x", "Program:Main.X", "INT", 42),
    ]
    tags = [{"name": n, "address": a, "type": t, "writable": True} for n, a, t, _ in writes]
    tags.append({"name": "temps", "address": "Temp[0]{4}", "type": "REAL"})
    with cpppo(TAGS) as server:
        device = _device(server.port, tags)
        await device.connect()
        try:
            assert device.mode == "large connected"
            for name, _, _, value in writes:
                await device.write(name, value)  # type: ignore[arg-type]
            reading = await device.read("default")
        finally:
            await device.close()
    got = {sample.name: sample.value for sample in reading.samples}
    assert reading.problems == []
    assert {name: got[name] for name, *_ in writes} == {name: value for name, _, _, value in writes}
    assert got["temps"] == [0.0, 0.0, 21.5, 0.0]
    assert all(sample.quality is Quality.good for sample in reading.samples)


async def test_a_missing_tag_and_a_wrong_type_mark_only_those_tags_bad() -> None:
    tags = [
        {"name": "count", "address": "Count", "type": "DINT"},
        {"name": "missing", "address": "NoSuchTag", "type": "REAL"},
        {"name": "as_real", "address": "Word", "type": "REAL"},
        {"name": "temp", "address": "Temp[1]", "type": "REAL"},
    ]
    with cpppo(TAGS) as server:
        device = _device(server.port, tags)
        await device.connect()
        try:
            reading = await device.read("default")
        finally:
            await device.close()
    quality = {sample.name: sample.quality for sample in reading.samples}
    assert quality == {"count": Quality.good, "missing": Quality.bad, "as_real": Quality.bad, "temp": Quality.good}
    problems = {problem.tags[0]: problem for problem in reading.problems}
    assert problems["missing"].address == "NoSuchTag"
    assert problems["missing"].reason.startswith("0x05 path destination unknown")
    assert problems["as_real"].reason == "PLC answered INT (0xC3), the config declares REAL"


async def test_unconnected_messaging_reads_the_same_values() -> None:
    tags = [
        {"name": "count", "address": "Count", "type": "DINT"},
        {"name": "temps", "address": "Temp[0]{4}", "type": "REAL"},
    ]
    with cpppo(TAGS) as server:
        device = _device(server.port, tags, connected=False)
        await device.connect()
        try:
            assert device.mode == "unconnected"
            reading = await device.read("default")
        finally:
            await device.close()
    assert [sample.value for sample in reading.samples] == [0, [0.0, 0.0, 0.0, 0.0]]


async def test_a_value_that_does_not_fit_is_refused_naming_device_tag_and_type() -> None:
    with cpppo(TAGS) as server:
        device = _device(server.port, [{"name": "small", "address": "Small", "type": "SINT", "writable": True}])
        await device.connect()
        try:
            with pytest.raises(BridgeError, match=r"device plc: tag small \(Small, SINT\): 300 is out of SINT range"):
                await device.write("small", 300)
        finally:
            await device.close()


async def test_a_route_the_server_does_not_have_is_refused_saying_what_to_check() -> None:
    with cpppo(TAGS, route_path='[{"port": 1, "link": 0}]') as server:
        # cpppo checks the route of Unconnected Sends only (not a Forward Open's connection path), and
        # refuses a foreign one at the encapsulation layer (a Logix answers CIP 0x01 / 0x0312:
        # tests/bridges/ethernetip/test_sim.py); either way the message says what to check
        count = [{"name": "count", "address": "Count", "type": "DINT"}]
        device = _device(server.port, count, route=[[1, 3]], connected=False)
        with pytest.raises(DeviceRefused, match=r"wrong route or slot\? check 'route' \(now \[1, 3\]"):
            await device.connect()
        await device.close()
        right = _device(server.port, count, route=[[1, 0]], connected=False)
        await right.connect()
        try:
            assert (await right.read("default")).samples[0].value == 0
        finally:
            await right.close()
