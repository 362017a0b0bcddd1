"""The GPIO source through libgpiod: on a real ``/dev/gpiochip*`` where the machine has one.

That test skips here with its reason: this is hardware, not an installable package, so it is not a
``require()`` component and strict CI mode does not fail on it. It takes one unused line as an
input (which drives nothing) and checks the source births its level. Without a chip, libgpiod's
answers to a missing chip and to a file that is no GPIO chip still reach the source as the device
down, naming them.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob

import gpiod
import pytest

from bridges.gpio import make_source
from bridges.source import DeviceDown, Samples, SourceEvent
from model.bridges.gpio import GpioBridgeConfig
from tests.fixtures.waiting import until


def _free_line() -> tuple[str, int] | None:
    """A chip and a line nobody uses, if the machine has a GPIO chip."""
    for path in sorted(glob.glob("/dev/gpiochip*")):
        try:
            with gpiod.Chip(path) as chip:
                for offset in range(chip.get_info().num_lines):
                    if not chip.get_line_info(offset).used:
                        return path, offset
        except OSError:
            continue
    return None


async def test_an_input_of_a_real_chip_is_read() -> None:
    found = _free_line()
    if found is None:
        pytest.skip("no /dev/gpiochip* on this machine (or no free line): GPIO hardware, not an installable package")
    path, offset = found
    config = GpioBridgeConfig.model_validate(
        {"name": "hw", "edge": {"group": "g"},
         "devices": [{"id": "chip", "chip": path, "inputs": [{"line": offset, "name": "In"}]}]}
    )  # fmt: skip
    seen: list[SourceEvent] = []
    source = make_source(config)

    async def consume() -> None:
        async for event in source.events():
            seen.append(event)

    async with source:
        task = asyncio.create_task(consume(), name="tests.gpiochip")
        try:
            await until(lambda: any(isinstance(e, Samples) for e in seen), what=f"line {offset} of {path} read")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    first = next(e for e in seen if isinstance(e, Samples))
    assert [(s.name, type(s.value)) for s in first.samples] == [("In", bool)]


@pytest.mark.parametrize(
    ("chip", "says"),
    [("/nonexistent/gpiochip9", "No such file or directory"), ("/dev/null", "No such device")],
)
async def test_libgpiod_refusals_are_the_device_down(chip: str, says: str) -> None:
    config = GpioBridgeConfig.model_validate(
        {"name": "hw", "edge": {"group": "g"},
         "devices": [{"id": "chip", "chip": chip, "inputs": [{"line": 0, "name": "In"}], "backoff_min_s": 5,
                      "backoff_max_s": 5}]}
    )  # fmt: skip
    seen: list[SourceEvent] = []
    source = make_source(config)  # the libgpiod provider

    async def consume() -> None:
        async for event in source.events():
            seen.append(event)

    async with source:
        task = asyncio.create_task(consume(), name="tests.gpiochip.refused")
        try:
            await until(lambda: seen != [], what="the device down")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    (down,) = seen
    assert isinstance(down, DeviceDown)
    assert down.reason.startswith(f"cannot take lines of {chip}: ")
    assert says in down.reason
