"""bridges.source: the tasks behind a source's events() (SourceTasks) and the poll loop (poll_rounds, PollClock)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from bridges.source import PollClock, SourceTasks, poll_rounds
from tests.exports import assert_all_is_honest
from tests.fixtures.waiting import until


def test_exports() -> None:
    assert_all_is_honest("bridges.source")


async def test_items_come_in_order_then_the_crash() -> None:
    tasks: SourceTasks[int] = SourceTasks("test")

    async def producer() -> None:
        for item in (1, 2, 3):
            await tasks.put(item)
        raise ValueError("producer bug")

    tasks.start(producer(), "producer")
    try:
        assert [await tasks.get() for _ in range(3)] == [1, 2, 3]
        with pytest.raises(ValueError, match="producer bug"):
            await tasks.get()
    finally:
        await tasks.stop()


async def test_a_crash_with_the_queue_full_is_raised_not_lost() -> None:
    tasks: SourceTasks[int] = SourceTasks("test", maxsize=1)
    tasks.put_nowait(7)  # full

    async def crashing() -> None:
        raise RuntimeError("crashed while full")

    tasks.start(crashing(), "crashing")
    await until(lambda: tasks.qsize() == 1 and tasks._overflowed is not None, what="the crash")
    try:
        with pytest.raises(RuntimeError, match="crashed while full"):
            await tasks.get()
        assert await tasks.get() == 7  # raised once; what was queued is still there
    finally:
        await tasks.stop()


async def test_stop_cancels_every_task() -> None:
    tasks: SourceTasks[int] = SourceTasks("test")
    ended: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    tasks.start(forever("a"), "a")
    tasks.start(forever("b"), "b")
    await asyncio.sleep(0)
    await tasks.stop()
    assert sorted(ended) == ["a", "b"]


async def test_poll_rounds_retries_a_lost_round_at_once_and_waits_after_a_read() -> None:
    outcomes = [False, False, True]
    rounds: list[bool] = []

    async def read_round(clock: PollClock) -> bool:
        outcome = outcomes[len(rounds)] if len(rounds) < len(outcomes) else True
        rounds.append(outcome)
        return outcome

    task = asyncio.create_task(poll_rounds(3600.0, read_round))
    try:
        await until(lambda: len(rounds) == 3, what="three rounds")
        for _ in range(20):  # the third round read: the next is an hour away
            await asyncio.sleep(0)
        assert rounds == [False, False, True]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_poll_rounds_ends_on_a_cancel_a_round_swallowed() -> None:
    started = asyncio.Event()

    async def swallowing(clock: PollClock) -> bool:
        started.set()
        with contextlib.suppress(asyncio.CancelledError):  # what 3.11's wait_for may do inside a client library
            await asyncio.sleep(3600)
        return False

    task = asyncio.create_task(poll_rounds(1.0, swallowing))
    await started.wait()
    task.cancel()
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_poll_clock_does_not_burst_after_a_slow_round() -> None:
    clock = PollClock(1.0)
    clock.next_at = time.monotonic() - 100.0  # rounds far behind
    before = time.monotonic()
    await clock.wait()  # starts at once
    assert clock.next_at >= before
    clock.restart()
    assert clock.next_at >= before
