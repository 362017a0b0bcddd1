"""tests/fixtures/running.py: a component entered and run, stopped on exit, and a crash inside it never swallowed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType

import pytest

from tests.exports import assert_all_is_honest
from tests.fixtures.running import running, running_task
from tests.fixtures.waiting import until


class _Part:
    """A part that records its life, crashes on demand, and can fail while it stops."""

    def __init__(self, *, fail_on_stop: bool = False) -> None:
        self.log: list[str] = []
        self.crash = asyncio.Event()
        self.fail_on_stop = fail_on_stop

    async def __aenter__(self) -> _Part:
        self.log.append("entered")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.log.append("exited")

    async def run(self) -> None:
        self.log.append("running")
        try:
            await self.crash.wait()
        except asyncio.CancelledError:
            self.log.append("cancelled")
            if self.fail_on_stop:
                raise RuntimeError("broke while stopping") from None
            raise
        raise RuntimeError("crashed in run()")


class _Slow(_Part):
    """A part that is ready only once told."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = asyncio.Event()

    async def wait_ready(self) -> None:
        await self.ready.wait()
        self.log.append("ready")


def test_exports() -> None:
    assert_all_is_honest("tests.fixtures.running")


async def test_entered_run_then_cancelled_and_exited() -> None:
    part = _Part()
    async with running(part, name="test.part") as same:
        assert same is part
        await until(lambda: "running" in part.log, what="run() started")
        assert part.log == ["entered", "running"]
    assert part.log == ["entered", "running", "cancelled", "exited"]


async def test_a_crash_in_run_interrupts_the_block_and_is_raised() -> None:
    part = _Part()

    async def crash_while_waiting() -> None:
        async with running(part):
            part.crash.set()
            await until(lambda: False, within_s=30, what="what the crashed part never does")

    began = time.monotonic()
    with pytest.raises(RuntimeError, match="crashed in run"):
        await crash_while_waiting()
    assert time.monotonic() - began < 5  # not the 30 s of the wait
    assert part.log == ["entered", "running", "exited"]
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # the cancel that interrupted the block is taken back


async def test_a_crash_the_block_did_not_wait_for_still_fails_it() -> None:
    part = _Part()

    async def swallow_the_cancel() -> None:
        async with running(part):
            part.crash.set()
            with contextlib.suppress(asyncio.CancelledError):  # the crash is raised on exit all the same
                await asyncio.sleep(30)

    with pytest.raises(RuntimeError, match="crashed in run"):
        await swallow_the_cancel()
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_a_failure_while_stopping_is_raised() -> None:
    part = _Part(fail_on_stop=True)

    async def stop() -> None:
        async with running(part):
            await until(lambda: "running" in part.log, what="run() started")

    with pytest.raises(RuntimeError, match="broke while stopping"):
        await stop()
    assert part.log[-1] == "exited"


async def test_the_block_s_own_error_wins_and_names_the_failure() -> None:
    part = _Part(fail_on_stop=True)

    async def fail() -> None:
        async with running(part, name="test.part"):
            await until(lambda: "running" in part.log, what="run() started")
            raise AssertionError("the test's own")

    with pytest.raises(AssertionError, match="the test's own") as caught:
        await fail()
    assert caught.value.__notes__ == ["meanwhile test.part failed: RuntimeError('broke while stopping')"]


async def test_waits_until_ready_when_the_component_can_say() -> None:
    part = _Slow()

    async def use() -> None:
        async with running(part):
            part.log.append("inside")

    using = asyncio.create_task(use())
    await until(lambda: "running" in part.log, what="run() started")
    await asyncio.sleep(0.05)
    assert part.log == ["entered", "running"]  # running, not ready: the block waits
    part.ready.set()
    await using
    assert part.log == ["entered", "running", "ready", "inside", "cancelled", "exited"]


async def test_a_crash_after_a_fixture_s_setup_fails_its_teardown() -> None:
    # pytest-asyncio sets a fixture up in one task and tears it down in another: the setup task is gone
    part = _Part()
    context = running_task(part)
    task = await asyncio.create_task(context.__aenter__())
    part.crash.set()
    await until(task.done, what="the crash")
    with pytest.raises(RuntimeError, match="crashed in run"):
        await context.__aexit__(None, None, None)
    current = asyncio.current_task()
    assert current is not None
    assert current.cancelling() == 0  # nobody else was cancelled for it


async def test_a_crash_as_the_block_ends_cancels_nobody_afterwards() -> None:
    # run() crashes in the same loop turn that wakes the block to its end: the block ends first, the crash is
    # raised, and the watch's callback (already scheduled) must not cancel the task that has moved on
    part = _Part()
    released = asyncio.Event()

    async def run() -> None:
        await part.crash.wait()
        released.set()  # wakes the block before the task's done callbacks are scheduled
        raise RuntimeError("crashed in run()")

    part.run = run  # type: ignore[method-assign]

    async def end_when_released() -> None:
        async with running(part):
            part.crash.set()
            await released.wait()

    with pytest.raises(RuntimeError, match="crashed in run"):
        await end_when_released()
    await asyncio.sleep(0.01)  # the stale callback's turn: a cancel would be raised here
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
