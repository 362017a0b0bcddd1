"""ModbusSource when devices misbehave: a server that stops and comes back, exception codes, silence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from pymodbus.constants import ExcCodes

from bridges.modbus import ModbusSource
from bridges.source import DeviceDown, Samples
from model.envelope import Quality
from tests.bridges.modbus.servers import TcpServer, bridge_config, sim_device
from tests.bridges.modbus.streams import down, next_event, samples_of, values

_FAST = {"timeout_s": 0.2, "retries": 1, "backoff_min_s": 0.05, "backoff_max_s": 0.2}


def _device(device_id: str, port: int, **fields: object) -> dict[str, object]:
    registers = [{"name": "v", "table": "holding", "address": 0}]
    return {"id": device_id, "port": port, "poll_groups": {"default": 0.05}, "registers": registers, **_FAST} | fields


@contextlib.asynccontextmanager
async def _silent_server() -> AsyncIterator[int]:
    """Accepts TCP connections and never answers (a PLC whose Modbus task hangs)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_stopped_server_gives_device_down_then_recovers_on_restart() -> None:
    async with TcpServer(sim_device(holding={0: [5]})) as flaky, TcpServer(sim_device(holding={0: [6]})) as steady:
        config = bridge_config(_device("flaky", flaky.port), _device("steady", steady.port))
        async with ModbusSource(config=config) as source, contextlib.aclosing(source.events()) as stream:
            assert values(await next_event(stream, samples_of("flaky"))) == {"v": 5}
            await flaky.stop()
            event = await next_event(stream, down("flaky"))
            assert isinstance(event, DeviceDown)
            assert f"tcp 127.0.0.1:{flaky.port} unit 1" in event.reason
            # the other device goes on while this one is down
            for _ in range(3):
                assert values(await next_event(stream, samples_of("steady"))) == {"v": 6}
            await flaky.start()  # same port
            seen: list[Samples | DeviceDown] = []

            def flaky_back(event: Samples | DeviceDown) -> bool:
                seen.append(event)
                return samples_of("flaky")(event)

            assert values(await next_event(stream, flaky_back)) == {"v": 5}
            assert not any(isinstance(e, DeviceDown) for e in seen), "one DeviceDown per outage"


async def test_device_down_at_start_is_reported_and_retried() -> None:
    async with TcpServer(sim_device(holding={0: [9]})) as server:
        port = server.port
        await server.stop()
        source = ModbusSource(config=bridge_config(_device("late", port)))
        async with source, contextlib.aclosing(source.events()) as stream:
            event = await next_event(stream, lambda e: True)
            assert isinstance(event, DeviceDown)
            assert event.reason.endswith(f"(tcp 127.0.0.1:{port} unit 1): device late: cannot connect")
            await server.start()
            assert values(await next_event(stream, samples_of("late"))) == {"v": 9}


async def test_silent_device_times_out_into_device_down() -> None:
    async with _silent_server() as port, TcpServer(sim_device(holding={0: [6]})) as steady:
        config = bridge_config(_device("mute", port), _device("steady", steady.port))
        async with ModbusSource(config=config) as source, contextlib.aclosing(source.events()) as stream:
            loop = asyncio.get_running_loop()
            started = loop.time()
            event = await next_event(stream, down("mute"))
            took = loop.time() - started
            assert isinstance(event, DeviceDown)
            assert f"tcp 127.0.0.1:{port} unit 1" in event.reason
            assert "holding 0..0: no answer after 2 attempt(s) of 0.2 s" in event.reason
            assert 0.35 < took < 2.0  # two attempts of 0.2 s
            assert values(await next_event(stream, samples_of("steady"))) == {"v": 6}


async def test_exception_codes_mark_tags_bad_without_taking_the_device_down(caplog: pytest.LogCaptureFixture) -> None:
    registers = [
        {"name": "ok0", "table": "holding", "address": 0},
        {"name": "ok1", "table": "holding", "address": 1},
        {"name": "hole", "table": "holding", "address": 5},  # the device has no register 5
        {"name": "ok9", "table": "holding", "address": 9},
    ]
    device = sim_device(holding={0: [10, 11], 9: [19]})
    caplog.set_level(logging.WARNING, logger="bridges.modbus")
    async with TcpServer(device) as server:
        config = bridge_config(_device("plc", server.port, registers=registers, max_gap=8))
        async with ModbusSource(config=config) as source, contextlib.aclosing(source.events()) as stream:
            rounds = [await next_event(stream, lambda e: True) for _ in range(4)]
    for event in rounds:
        assert isinstance(event, Samples), event
        quality = {s.name: (s.value, s.quality) for s in event.samples}
        assert quality == {
            "ok0": (10, Quality.good),
            "ok1": (11, Quality.good),
            "hole": (None, Quality.bad),
            "ok9": (19, Quality.good),
        }
    messages = [r.getMessage() for r in caplog.records if r.name == "bridges.modbus.source"]
    refused = [m for m in messages if "refused holding 5..5" in m]
    assert refused == [
        f"modbus plc: device plc (tcp 127.0.0.1:{server.port} unit 1) refused holding 5..5: ILLEGAL_ADDRESS (2); "
        "its tags hole are bad"
    ], "rate-limited: one warning for four rounds"
    assert any("refused holding 0..9 with ILLEGAL_ADDRESS (2); reading its 4 tags one by one" in m for m in messages)


async def test_wrong_unit_gives_bad_quality() -> None:
    async with TcpServer(sim_device(unit=1, holding={0: [1]})) as server:
        config = bridge_config(_device("other", server.port, unit_id=7))
        async with ModbusSource(config=config) as source, contextlib.aclosing(source.events()) as stream:
            event = await next_event(stream, lambda e: True)
    assert isinstance(event, Samples)
    assert [(s.name, s.value, s.quality) for s in event.samples] == [("v", None, Quality.bad)]


async def test_gateway_exception_codes_take_the_device_down() -> None:
    async with TcpServer(sim_device(holding={0: [1]}, refuse=ExcCodes.GATEWAY_NO_RESPONSE)) as server:
        config = bridge_config(_device("behind", server.port))
        async with ModbusSource(config=config) as source, contextlib.aclosing(source.events()) as stream:
            event = await next_event(stream, lambda e: True)
    assert isinstance(event, DeviceDown)
    assert event.reason.endswith("device behind: holding 0..0: gateway says GATEWAY_NO_RESPONSE (11)")


async def test_device_failure_code_is_a_bad_tag_not_a_dead_device() -> None:
    async with TcpServer(sim_device(holding={0: [1]}, refuse=ExcCodes.DEVICE_BUSY)) as server:
        config = bridge_config(_device("busy", server.port))
        async with ModbusSource(config=config) as source, contextlib.aclosing(source.events()) as stream:
            events = [await next_event(stream, lambda e: True) for _ in range(3)]
    assert all(isinstance(e, Samples) and e.samples[0].quality == Quality.bad for e in events)
