"""EXPERIMENTAL S7CommPlus device against s7commplus 0.3's own emulator, and what that emulator cannot show.

The emulator (``s7commplus.Server``) serves sessions, the DB list and absolute reads, but no type-info
container and no symbolic (LID) reads: the library's browse of it finds no symbols, so nothing here
reads a value by symbol. What is tested: the session opens, the symbol table is browsed at connect,
a symbol missing from it is a TagProblem naming the symbol and the table's size, and an unreachable
PLC is DeviceUnreachable. docs/bridges.md says the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
from collections.abc import AsyncIterator

import pytest
from s7commplus import Server

from bridges.s7 import make_source
from bridges.s7.plus import S7PlusPlc, _metric, browse_symbols
from model.bridges.s7 import S7BridgeConfig
from model.envelope import Quality
from uns.errors import DeviceUnreachable


@contextlib.asynccontextmanager
async def _emulator() -> AsyncIterator[int]:
    with socket.socket() as probe:  # the emulator binds the port it is given and cannot report one it picked
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Server()
    server.register_db(1, {"Speed": ("Real", 0), "Running": ("Bool", 4)}, size=16)
    await asyncio.to_thread(server.start, "127.0.0.1", port)
    try:
        yield port
    finally:
        await asyncio.to_thread(server.stop)


def _config(port: int) -> S7BridgeConfig:
    device = {
        "id": "s1500",
        "host": "127.0.0.1",
        "port": port,
        "protocol": "s7commplus",
        "connect_timeout_s": 5.0,
        "tags": [{"name": "Speed", "symbol": '"DB1".Speed', "type": "REAL"}],
    }
    return S7BridgeConfig.model_validate({"name": "s7plus", "edge": {"group": "g"}, "devices": [device]})


async def test_a_symbol_the_plc_does_not_list_is_a_tag_problem_naming_it() -> None:
    async with _emulator() as port:
        config = _config(port)
        device = S7PlusPlc(bridge=config.name, config=config.devices[0])
        assert device.endpoint == f"s7commplus 127.0.0.1:{port}"
        assert [(t.name, t.datatype.name) for t in device.tags()] == [("Speed", "Float")]
        await device.connect()
        try:
            read = await device.read("default")
        finally:
            await device.close()
        symbols = await browse_symbols("127.0.0.1", port)
    assert read.samples[0].quality == Quality.bad
    assert [(p.address, p.reason) for p in read.problems] == [
        ('"DB1".Speed', "not in the PLC's symbol table (0 symbols)")
    ]
    assert symbols == []  # the emulator has no type-info container to browse


async def test_make_source_builds_the_experimental_device_and_an_absent_plc_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = make_source(_config(port))
    assert [t.name for t in source.tags()] == ["Speed"]
    device = S7PlusPlc(bridge="s7plus", config=_config(port).devices[0])
    with pytest.raises(DeviceUnreachable):
        await device.connect()


@pytest.mark.parametrize(
    ("value", "published"),
    [
        (True, True),
        (7, 7),
        (1.5, 1.5),
        ("x", "x"),
        (datetime.datetime(1970, 1, 1, 0, 0, 1), 1000),
        (datetime.timedelta(seconds=2), 2000),
        (datetime.date(1970, 1, 3), 2),
        (datetime.time(0, 1, 0, 5000), 60_005),
    ],
)
def test_library_values_become_sparkplug_values(value: object, published: object) -> None:
    assert _metric(value) == published


def test_symbol_tags_need_protocol_s7commplus_and_a_type() -> None:
    base = {"id": "p", "tags": [{"name": "S", "symbol": '"DB1".Speed'}]}
    with pytest.raises(ValueError, match="symbol needs protocol s7commplus"):
        S7BridgeConfig.model_validate({"name": "s", "edge": {"group": "g"}, "devices": [base]})
    with pytest.raises(ValueError, match="set symbol and type"):
        S7BridgeConfig.model_validate(
            {"name": "s", "edge": {"group": "g"}, "devices": [base | {"protocol": "s7commplus"}]}
        )
