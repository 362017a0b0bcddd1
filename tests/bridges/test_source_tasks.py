"""bridges.source: the tasks behind a source's events() (SourceTasks)."""

from __future__ import annotations

import asyncio

import pytest

from bridges.source import SourceTasks
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

