"""FINS under the shared PlcSource: a PLC down at start, a wrong route, a half-open TCP link, end codes per tag."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridges.fins import make_source
from bridges.sim.fins_server import FinsServer
from bridges.source import DeviceDown, Samples, SourceEvent
from model.bridges.fins_address import parse_address
from model.envelope import Quality
from tests.bridges.fins.plcs import bridge_config, device_config


async def _next(events: AsyncIterator[SourceEvent], kind: type[Any], within_s: float = 5.0) -> Any:
    async with asyncio.timeout(within_s):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"events ended before a {kind.__name__}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_plc_down_at_start_is_reported_then_read_once_it_is_up(transport: str) -> None:
    port = _free_port()
    config = bridge_config(device_config(port, {"name": "A", "address": "D0"}, transport=transport,
                                         backoff_min_s=0.05, backoff_max_s=0.2))  # fmt: skip
    async with make_source(config) as source:
        events = source.events()
        try:
            down = await _next(events, DeviceDown)
            assert down.device == "pump"
            async with FinsServer(port=port) as sim:
                sim.memory.set_words(parse_address("D0"), b"\x00\x09")
                samples = await _next(events, Samples)
        finally:
            await events.aclose()
    assert [(s.name, s.value) for s in samples.samples] == [("A", 9)]


async def test_a_wrong_route_fails_fast_is_logged_once_and_never_loops_hot(caplog: pytest.LogCaptureFixture) -> None:
    async with FinsServer() as sim:
        config = bridge_config(device_config(sim.port, {"name": "A", "address": "D0"}, network=4,
                                             backoff_min_s=0.05, backoff_max_s=30.0))  # fmt: skip
        with caplog.at_level(logging.ERROR, logger="bridges.plc.source"):
            async with make_source(config) as source:
                events = source.events()
                try:
                    down = await _next(events, DeviceDown)
                    await asyncio.sleep(0.5)  # room for a hot loop to show: there must be no second attempt
                finally:
                    await events.aclose()
        assert len(sim.requests) == 1  # one Controller Data Read, answered 0x0502, then the 30 s cap
    assert "end code 0x0502 no routing tables" in down.reason
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "check network (DNA), node (DA1) and unit (DA2)" in errors[0]


async def test_a_half_open_tcp_connection_is_found_by_the_read_deadline() -> None:
    async with FinsServer() as sim:
        config = bridge_config(device_config(sim.port, {"name": "A", "address": "D0"}, transport="tcp",
                                             timeout_s=0.2, backoff_min_s=0.05, backoff_max_s=0.2))  # fmt: skip
        async with make_source(config) as source:
            events = source.events()
            try:
                await _next(events, Samples)
                sim.hold = 1_000_000  # the PLC stops answering but keeps the socket open
                down = await _next(events, DeviceDown)
                sim.hold = 0
                sim.release()
                sim.memory.set_words(parse_address("D0"), b"\x00\x05")
                back = await _next(events, Samples)
            finally:
                await events.aclose()
    assert "no FINS reply" in down.reason or "half-open" in down.reason
    assert back.samples[0].value == 5


async def test_an_end_code_marks_just_its_tag_bad_with_a_warning_naming_the_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tags = [{"name": "Gone", "address": "E9_0"}, {"name": "Here", "address": "D0"}]
    async with FinsServer() as sim:
        sim.memory.set_words(parse_address("D0"), b"\x00\x03")
        config = bridge_config(device_config(sim.port, *tags, poll_groups={"default": 0.05}))
        with caplog.at_level(logging.WARNING, logger="bridges.plc.source"):
            async with make_source(config) as source:
                events = source.events()
                try:
                    first = await _next(events, Samples)
                    await _next(events, Samples)
                    await _next(events, Samples)
                finally:
                    await events.aclose()
    by_name = {s.name: s for s in first.samples}
    assert (by_name["Gone"].value, by_name["Gone"].quality) == (None, Quality.bad)
    assert (by_name["Here"].value, by_name["Here"].quality) == (3, Quality.good)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # three polls, one warning
    assert "E9_0: end code 0x1101 area classification missing" in warnings[0]
    assert "bad: Gone" in warnings[0]
    assert "fins udp 127.0.0.1:" in warnings[0]
