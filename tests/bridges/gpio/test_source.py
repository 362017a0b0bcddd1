"""The GPIO source on in-memory chips (the libgpiod provider's interface): states, counters, outputs, a lost chip."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from bridges.gpio import make_source
from bridges.gpio.memory import MemoryChip, MemoryGpio
from bridges.gpio.source import GpioSource
from bridges.source import DeviceDown, Samples, SourceEvent
from model.bridges.gpio import GpioBridgeConfig
from tests.fixtures.waiting import until
from uns.errors import BridgeError, DeviceUnreachable

_MS = 1_000_000

CONFIG = GpioBridgeConfig.model_validate(
    {
        "name": "io",
        "edge": {"group": "g"},
        "devices": [
            {
                "id": "pal",
                "backoff_min_s": 0.02,
                "backoff_max_s": 0.05,
                "inputs": [
                    {"line": "GUARD", "name": "Guard/Closed", "active_low": True, "bias": "pull_up"},
                    {"line": 3, "name": "Counters/PartDone", "mode": "counter", "debounce_ms": 10},
                    {"line": 4, "name": "Counters/Rejects", "mode": "counter", "edge": "falling", "debounce_ms": 10},
                ],
                "outputs": [{"line": 7, "name": "Lamp/Red"}, {"line": 8, "name": "Horn", "active_low": True}],
            }
        ],
    }
)


@contextlib.asynccontextmanager
async def _running(gpio: MemoryGpio) -> AsyncIterator[tuple[GpioSource, list[SourceEvent]]]:
    seen: list[SourceEvent] = []
    source = make_source(CONFIG, gpio)

    async def consume() -> None:
        async for event in source.events():
            seen.append(event)

    async with source:
        task = asyncio.create_task(consume(), name="tests.gpio.consume")
        try:
            yield source, seen
        finally:
            if task.done():
                task.result()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _values(seen: list[SourceEvent], name: str) -> list[object]:
    return [s.value for e in seen if isinstance(e, Samples) for s in e.samples if s.name == name]


def _chip() -> MemoryChip:
    chip = MemoryChip(count=16, names={"GUARD": 2})
    chip.drive("GUARD", True)  # pulled up: the guard is open (active low)
    return chip


def _pulse(chip: MemoryChip, line: int, start_ns: int, *, bounces: int) -> None:
    """A part passing a sensor: a rising edge with contact bounce, held 30 ms, a falling edge with bounce."""
    t = start_ns
    for _ in range(bounces):
        chip.drive(line, True, at_ns=t)
        chip.drive(line, False, at_ns=t + _MS)
        t += 2 * _MS
    chip.drive(line, True, at_ns=t)
    t += 30 * _MS
    for _ in range(bounces):
        chip.drive(line, False, at_ns=t)
        chip.drive(line, True, at_ns=t + _MS)
        t += 2 * _MS
    chip.drive(line, False, at_ns=t)


async def test_states_and_debounced_pulse_counters() -> None:
    chip = _chip()
    async with _running(MemoryGpio({"/dev/gpiochip0": chip})) as (_source, seen):
        await until(lambda: _values(seen, "Guard/Closed") == [False], what="the guard's first state")
        assert _values(seen, "Counters/PartDone") == [0]
        chip.drive("GUARD", False)  # closed: low, active
        await until(lambda: _values(seen, "Guard/Closed") == [False, True], what="the guard closed")
        base = time.monotonic_ns() - 10_000 * _MS  # stamped in the past: every level has held by now
        for n in range(5):
            _pulse(chip, 3, base + n * 100 * _MS, bounces=3)
        _pulse(chip, 4, base, bounces=2)
        chip.drive(3, True, at_ns=base + 600 * _MS)  # a 2 ms glitch: no part
        chip.drive(3, False, at_ns=base + 602 * _MS)
        await until(lambda: _values(seen, "Counters/PartDone")[-1] == 5, what="five parts")
        await until(lambda: _values(seen, "Counters/Rejects")[-1] == 1, what="one reject (on its falling edge)")
        chip.drive(3, True)  # a live edge, stamped now: counted once it has held 10 ms
        chip.drive(3, False, at_ns=time.monotonic_ns() + 20 * _MS)
        await until(lambda: _values(seen, "Counters/PartDone")[-1] == 6, what="the live part")
    assert _values(seen, "Counters/PartDone") == [0, 1, 2, 3, 4, 5, 6]  # each pulse once, bounce and glitch not


async def test_outputs_from_writes_with_active_low() -> None:
    chip = _chip()
    async with _running(MemoryGpio({"/dev/gpiochip0": chip})) as (source, seen):
        await until(lambda: _values(seen, "Horn") == [False], what="the outputs' first values")
        assert chip.high[8]  # active low, off: the line is high
        await source.write("pal", "Lamp/Red", True)
        await source.write("pal", "Horn", True)
        assert (chip.high[7], chip.high[8]) == (True, False)
        await until(lambda: _values(seen, "Lamp/Red") == [False, True], what="the written value reported")
        with pytest.raises(BridgeError, match="Guard/Closed is not an output"):
            await source.write("pal", "Guard/Closed", True)
        with pytest.raises(BridgeError, match="takes a Boolean"):
            await source.write("pal", "Horn", 1)


async def test_a_lost_chip_is_down_once_retaken_and_counts_go_on() -> None:
    chip = _chip()
    gpio = MemoryGpio({"/dev/gpiochip0": chip})
    async with _running(gpio) as (source, seen):
        await until(lambda: _values(seen, "Counters/PartDone") == [0], what="the first reading")
        _pulse(chip, 3, time.monotonic_ns() - 1000 * _MS, bounces=1)
        await until(lambda: _values(seen, "Counters/PartDone")[-1] == 1, what="a part")
        chip.unplug()
        await until(lambda: any(isinstance(e, DeviceDown) for e in seen), what="the chip down")
        with pytest.raises(DeviceUnreachable, match="device pal is down"):
            await source.write("pal", "Lamp/Red", True)
        await asyncio.sleep(0.1)  # retries fail while it is away
        chip.present = True
        await until(lambda: gpio.requests >= 2 and _values(seen, "Counters/PartDone")[-1:] == [1], what="retaken")
        _pulse(chip, 3, time.monotonic_ns() - 1000 * _MS, bounces=1)
        await until(lambda: _values(seen, "Counters/PartDone")[-1] == 2, what="counting on")
    downs = [e for e in seen if isinstance(e, DeviceDown)]
    assert len(downs) == 1
    assert downs[0].reason == "/dev/gpiochip0: the GPIO chip is gone"


async def test_a_missing_chip_or_line_is_down_naming_it() -> None:
    gpio = MemoryGpio({"/dev/gpiochip0": MemoryChip(count=4, names={"GUARD": 2})})  # no line 7 or 8
    async with _running(gpio) as (_source, seen):
        await until(lambda: any(isinstance(e, DeviceDown) for e in seen), what="down")
    down = next(e for e in seen if isinstance(e, DeviceDown))
    assert down.reason == "cannot take lines of /dev/gpiochip0: no line 4 (the chip has 4)"
