"""The serial source over pseudo-terminal pairs: a simulated MT-SICS or Sartorius scale, or a scanner, at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridges.serial import SerialSource
from bridges.sim.serial_scale import SimulatedScale
from bridges.source import DeviceDown, Samples, SourceEvent
from model.bridges.serial import SerialBridgeConfig
from tests.fixtures.waiting import until
from uns.connect import network_clients
from uns.errors import BridgeError
from uns.mqtt.types import BrokerUrl


def _config(port: str, **device: object) -> SerialBridgeConfig:
    return SerialBridgeConfig.model_validate(
        {
            "name": "pal",
            "edge": {"group": "g"},
            "devices": [{"id": "scale", "port": port, "protocol": {"kind": "mt_sics"}, "backoff_min_s": 0.05,
                         "backoff_max_s": 0.2, **device}],
        }
    )  # fmt: skip


@contextlib.asynccontextmanager
async def _running(config: SerialBridgeConfig) -> AsyncIterator[tuple[SerialSource, list[SourceEvent]]]:
    seen: list[SourceEvent] = []
    source = SerialSource(config=config, clients=network_clients(BrokerUrl(port=1)))

    async def consume() -> None:
        async for event in source.events():
            seen.append(event)

    async with source:
        task = asyncio.create_task(consume(), name="tests.serial.consume")
        try:
            yield source, seen
        finally:
            if task.done():
                task.result()  # the source crashed: show why
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _values(seen: list[SourceEvent], name: str) -> list[object]:
    return [s.value for e in seen if isinstance(e, Samples) for s in e.samples if s.name == name]


def _last(seen: list[SourceEvent], name: str) -> object:
    values = _values(seen, name)
    return values[-1] if values else None


async def test_polled_weights_with_the_scale_settling() -> None:
    async with SimulatedScale() as scale:
        scale.load(612.4, settle_s=3600)  # moving until the test lets it settle
        config = _config(scale.port, poll={"interval_s": 0.05, "timeout_s": 0.5})
        async with _running(config) as (_source, seen):
            await until(lambda: _last(seen, "Status") == "dynamic", what="a dynamic weight")
            scale.load(612.4)
            await until(lambda: _last(seen, "Stable") is True, what="a stable weight")
    assert 612.4 in _values(seen, "Weight")
    assert "dynamic" in _values(seen, "Status")  # it read S D while settling
    assert scale.commands[:2] == [b"TA", b"SI"]  # the tare in use, then "send weight immediately"
    assert _last(seen, "Status/Refused") == 0


async def test_garbage_is_refused_with_its_offset_and_the_next_frame_is_read() -> None:
    async with SimulatedScale() as scale:
        config = _config(scale.port)  # no poll: the scale sends on its own (SIR mode, a print key)
        async with _running(config) as (_source, seen):
            await until(lambda: _last(seen, "Status/Frames") == 0, what="the port open")
            scale.send(b"S S     10.000 kg\r\nS S     1\xff.000 kg\r\nS S     11.000 kg\r\n")
            await until(lambda: _last(seen, "Weight") == 11.0, what="the frame after the garbage")
    assert _values(seen, "Weight") == [10.0, 11.0]
    assert _last(seen, "Status/Refused") == 1
    refusals = [v for v in _values(seen, "Status/LastRefusal") if v]
    # the bad byte is the 10th of the second line, which starts at offset 19: offset 28
    assert refusals == [
        "serial pal: device scale (" + scale.port + "): offset 28: byte 0xff is not printable ASCII: "
        "b'S S     1\\xff.000 kg'"
    ]


async def test_a_port_that_disappears_is_down_once_and_reopened_with_backoff(tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB-scale"  # like a udev /dev/serial/by-id link: the pty behind it changes
    async with SimulatedScale(link=link) as scale:
        scale.load(5.0)
        config = _config(str(link), poll={"interval_s": 0.05, "timeout_s": 0.5})
        async with _running(config) as (_source, seen):
            await until(lambda: _last(seen, "Weight") == 5.0, what="the first weight")
            scale.unplug()
            await until(lambda: any(isinstance(e, DeviceDown) for e in seen), what="the device down")
            await asyncio.sleep(0)  # the reopen attempts fail while the link is gone
            scale.load(7.5)
            scale.plug()
            await until(lambda: _last(seen, "Weight") == 7.5, what="weights after the port came back")
    downs = [e for e in seen if isinstance(e, DeviceDown)]
    assert len(downs) == 1  # one outage, however many reopen attempts
    assert str(link) in downs[0].reason


async def test_missed_polls_report_the_device_down_and_an_answer_brings_it_back() -> None:
    async with SimulatedScale() as scale:
        scale.load(1.0)
        config = _config(scale.port, poll={"interval_s": 0.02, "timeout_s": 0.1, "missed_down": 3})
        async with _running(config) as (_source, seen):
            await until(lambda: _last(seen, "Weight") == 1.0, what="a weight")
            scale.silent = True
            await until(lambda: any(isinstance(e, DeviceDown) for e in seen), what="down after missed polls")
            down = next(e for e in seen if isinstance(e, DeviceDown))
            scale.silent = False
            scale.load(2.0)
            await until(lambda: _last(seen, "Weight") == 2.0, what="answers again")
    assert down.reason == "no answer to 3 polls (b'SI\\r\\n', 0.1 s each)"
    assert _last(seen, "Status/MissedPolls") >= 3  # type: ignore[operator]


async def test_zero_and_tare_from_commands_and_their_refusals() -> None:
    async with SimulatedScale() as scale:
        scale.load(2.0)
        config = _config(scale.port, poll={"interval_s": 0.05, "timeout_s": 0.5})
        async with _running(config) as (source, seen):
            await until(lambda: _last(seen, "Weight") == 2.0, what="a weight")
            await source.write("scale", "Command/Tare", True)
            await until(lambda: _last(seen, "Weight") == 0.0, what="net 0 after the tare")
            assert _last(seen, "Tare") == 2.0
            scale.load(3.0, settle_s=5.0)  # moving: MT-SICS answers Z I
            with pytest.raises(BridgeError, match=r"Command/Zero refused: Z I: not zeroed \(busy\)"):
                await source.write("scale", "Command/Zero", True)
            with pytest.raises(BridgeError, match="takes true"):
                await source.write("scale", "Command/Zero", False)
            with pytest.raises(BridgeError, match="Weight is not writable"):
                await source.write("scale", "Weight", 1.0)
    assert b"T" in scale.commands
    assert b"Z" in scale.commands


async def test_a_sartorius_scale_printed_with_esc_p() -> None:
    async with SimulatedScale(protocol="sartorius") as scale:
        scale.load(12.345)
        config = _config(scale.port, protocol={"kind": "sartorius"}, poll={"interval_s": 0.05, "timeout_s": 0.5})
        async with _running(config) as (_source, seen):
            await until(lambda: _last(seen, "Weight") == 12.345, what="an SBI weight")
    assert scale.commands[0] == b"\x1bP"


async def test_a_scanner_with_prefix_and_suffix_every_scan_counted() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        config = _config(
            os.ttyname(slave), framing={"kind": "terminator", "terminator": "\r"},
            protocol={"kind": "scanner", "prefix": "*", "suffix": "#"},
        )  # fmt: skip
        async with _running(config) as (_source, seen):
            await until(lambda: _last(seen, "Status/Frames") == 0, what="the port open")
            os.write(master, b"*LOT-1#\r*LOT-1#\rLOT-2\r*LOT-3#\r")
            await until(lambda: _last(seen, "Scans") == 3, what="three scans")
    finally:
        os.close(master)
        os.close(slave)
    assert _values(seen, "Code") == ["LOT-1", "LOT-1", "LOT-3"]  # the same code twice is two scans
    assert _last(seen, "Status/Refused") == 1


async def test_line_settings_reach_the_port_and_a_port_refusing_them_is_down() -> None:
    # a Linux pty takes 8N1 but refuses parity and 7 data bits (EINVAL): so the settings did reach the port,
    # and the device is down naming them (pyserial's loop:// has no file descriptor for asyncio to watch)
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        config = _config(path, baudrate=2400, bytesize=7, parity="even", stopbits=2, protocol={"kind": "scanner"})
        async with _running(config) as (_source, seen):
            await until(lambda: any(isinstance(e, DeviceDown) for e in seen), what="the refusal")
    finally:
        os.close(master)
        os.close(slave)
    down = next(e for e in seen if isinstance(e, DeviceDown))
    assert down.reason.startswith(f"cannot open {path}: it refuses 2400 baud 7E2: ")
