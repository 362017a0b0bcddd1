"""PlcSource against a real TCP device: down at start, refusals, half-open links, tag problems, resets, bugs, writes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from bridges.plc import PlcSource
from bridges.source import DeviceDown, Samples, SourceEvent
from model.bridges.plc import PlcLinkSettings
from model.envelope import Quality
from tests.bridges.modbus.streams import down, next_event, samples_of, values
from tests.bridges.plc.toy import ToyDevice, ToyPlc, ToyTag
from tests.fixtures.waiting import until
from uns.errors import BridgeError, DeviceUnreachable, ReadError

_TAGS = [ToyTag("Speed", "s"), ToyTag("Count", "c"), ToyTag("Setpoint", "sp", writable=True)]
_MEMORY = {"s": 12, "c": 7, "sp": 50}


@contextlib.asynccontextmanager
async def _running(*devices: ToyDevice) -> AsyncIterator[tuple[PlcSource, AsyncGenerator[SourceEvent, None]]]:
    source = PlcSource(name="toys", kind="toy", devices=devices)
    async with source, contextlib.aclosing(source.events()) as stream:
        yield source, stream


async def test_device_down_at_start_is_retried_with_backoff_then_read() -> None:
    async with ToyPlc(_MEMORY) as plc:
        await plc.stop()
        device = ToyDevice(device_id="press", port=plc.port, tags=_TAGS)
        async with _running(device) as (_source, stream):
            event = await next_event(stream, lambda e: True)
            assert isinstance(event, DeviceDown)
            assert f"(toy 127.0.0.1:{plc.port} slot 1): device press: cannot connect" in event.reason
            await until(lambda: device.connects >= 4, what="retries while the PLC is down")
            await plc.start()
            assert values(await next_event(stream, samples_of("press"))) == {"Speed": 12, "Count": 7, "Setpoint": 50}


async def test_refusal_fails_fast_is_logged_once_and_never_loops_hot(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="bridges.plc")
    settings = PlcLinkSettings(timeout_s=0.2, connect_timeout_s=0.5, backoff_min_s=0.01, backoff_max_s=2.0)
    async with ToyPlc(_MEMORY) as plc:
        plc.refuse = "slot 1 holds no CPU"
        device = ToyDevice(device_id="press", port=plc.port, tags=_TAGS, settings=settings)
        async with _running(device) as (source, stream):
            event = await next_event(stream, lambda e: True)
            assert isinstance(event, DeviceDown)
            assert event.reason.endswith("device press: slot 1 holds no CPU: check the slot")
            await asyncio.sleep(2.5)  # what counts here is how few connects a refusing PLC gets in this time
            with pytest.raises(DeviceUnreachable, match="device press is down"):
                await source.write("press", "Setpoint", 1)
    # at the maximum backoff (2 s, jitter 1..2 s): at most 3 attempts in 2.5 s; min 0.01 s doubling would make ~9
    assert 1 <= plc.connects <= 3, plc.connects
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        f"toy toys: device press refused: bridge toy (toy 127.0.0.1:{plc.port} slot 1): device press: "
        "slot 1 holds no CPU: check the slot; retrying every 2 s at most until that is fixed"
    ]


async def test_half_open_connection_is_detected_by_the_read_deadline_and_reconnected() -> None:
    async with ToyPlc(_MEMORY) as plc:
        device = ToyDevice(device_id="press", port=plc.port, tags=_TAGS)
        async with _running(device) as (_source, stream):
            await next_event(stream, samples_of("press"))
            plc.mute()  # the socket stays open; nothing comes back
            started = time.monotonic()
            event = await next_event(stream, down("press"))
            took = time.monotonic() - started
            assert isinstance(event, DeviceDown)
            assert event.reason.endswith(
                "device press: read of poll group default: no answer within 1.4 s "
                "(a half-open connection: the PLC or the network is gone)"
            )
            assert 1.2 < took < 3.0
            plc.memory["c"] = 8
            assert values(await next_event(stream, samples_of("press")))["Count"] == 8  # on a new connection
            assert plc.connects == 2


async def test_tag_problem_marks_just_its_tags_bad_with_one_warning_per_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bridges.plc")
    tags = [*_TAGS, ToyTag("Ghost", "g1"), ToyTag("Phantom", "g2")]
    async with ToyPlc(_MEMORY) as plc:
        device = ToyDevice(device_id="press", port=plc.port, tags=tags)
        async with _running(device) as (_source, stream):
            rounds = [await next_event(stream, lambda e: True) for _ in range(5)]
    for event in rounds:
        assert isinstance(event, Samples), event
        assert {s.name: (s.value, s.quality) for s in event.samples} == {
            "Speed": (12, Quality.good),
            "Count": (7, Quality.good),
            "Setpoint": (50, Quality.good),
            "Ghost": (None, Quality.bad),
            "Phantom": (None, Quality.bad),
        }
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    where = f"toy toys: device press (toy 127.0.0.1:{plc.port} slot 1)"
    assert warnings == [
        f"{where}: g1: 0x0A object does not exist; bad: Ghost",
        f"{where}: g2: 0x0A object does not exist; bad: Phantom",
    ]


async def test_connection_reset_mid_read_is_a_lost_link_and_recovers() -> None:
    async with ToyPlc(_MEMORY) as plc:
        device = ToyDevice(device_id="press", port=plc.port, tags=_TAGS)
        async with _running(device) as (_source, stream):
            await next_event(stream, samples_of("press"))
            plc.reset_next_read = True
            event = await next_event(stream, down("press"))
            assert isinstance(event, DeviceDown)
            assert "device press: read of poll group default: connection lost (ConnectionResetError" in event.reason
            plc.memory["s"] = 13
            assert values(await next_event(stream, samples_of("press")))["Speed"] == 13
            assert device.closes >= 1


async def test_a_buggy_driver_surfaces_from_events() -> None:
    async with ToyPlc(_MEMORY) as plc:
        device = ToyDevice(device_id="press", port=plc.port, tags=_TAGS, bug=True)
        async with _running(device) as (_source, stream):
            with pytest.raises(TypeError, match="driver bug"):
                await next_event(stream, lambda e: True)


async def test_one_device_down_does_not_stop_the_others() -> None:
    async with ToyPlc(_MEMORY) as good, ToyPlc({"s": 1, "c": 2, "sp": 3}) as bad:
        await bad.stop()
        devices = (
            ToyDevice(device_id="ok", port=good.port, tags=_TAGS),
            ToyDevice(device_id="off", port=bad.port, tags=_TAGS, groups={"fast": 0.05, "slow": 0.2}),
        )
        async with _running(*devices) as (_source, stream):
            seen: list[SourceEvent] = []
            for _ in range(6):
                seen.append(await next_event(stream, samples_of("ok")))
    assert all(values(e)["Speed"] == 12 for e in seen)


async def test_writes_reach_the_plc_and_bad_ones_name_device_and_tag() -> None:
    async with ToyPlc(_MEMORY) as plc:
        device = ToyDevice(device_id="press", port=plc.port, tags=[*_TAGS, ToyTag("Gone", "x", writable=True)])
        async with _running(device) as (source, stream):
            await next_event(stream, samples_of("press"))
            await source.write("press", "Setpoint", 61)
            assert plc.writes == [("sp", 61)]
            assert values(await next_event(stream, samples_of("press")))["Setpoint"] == 61
            with pytest.raises(BridgeError, match="device 'press' has no tag 'Nope'"):
                await source.write("press", "Nope", 1)
            with pytest.raises(BridgeError, match="device press: tag Speed is not writable"):
                await source.write("press", "Speed", 1)
            with pytest.raises(BridgeError, match="write: no device 'other'"):
                await source.write("other", "Setpoint", 1)
            connects = device.connects
            with pytest.raises(ReadError, match=r"x: write refused: E0A"):
                await source.write("press", "Gone", 1)
            # the PLC answered the refused write: the connection is fine, reads go on without a reconnect
            await next_event(stream, samples_of("press"))
            await source.write("press", "Setpoint", 62)
            assert (device.connects, device.closes) == (connects, 0)
            await plc.stop()
            await next_event(stream, down("press"))
            with pytest.raises(DeviceUnreachable, match="write of Setpoint: device press is down"):
                await source.write("press", "Setpoint", 2)


async def test_a_driver_that_swallows_a_cancel_does_not_keep_the_source_alive() -> None:
    async with ToyPlc(_MEMORY) as plc:
        device = ToyDevice(device_id="press", port=plc.port, tags=_TAGS, groups={"a": 0.001, "b": 0.001},
                           swallow_cancel=True)  # fmt: skip
        source = PlcSource(name="toys", kind="toy", devices=[device])
        async with source:
            stream = source.events()
            for _ in range(3):
                await next_event(stream, samples_of("press"))
            closing = asyncio.create_task(stream.aclose())
            await until(lambda: device.swallowed > 0 or closing.done(), what="a cancel landing in a read")
            async with asyncio.timeout(5):  # before the fix the poll task went on forever and this never returned
                await closing
