"""The shared live picture: fresh rows are served as they are, stale ones computed once for every reader."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime

import pytest

from uns.mes.downtime import CurrentRow
from uns.mes.live import LivePicture


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _picture(clock: _Clock, seen: list[datetime], fail: list[bool] | None = None) -> LivePicture:
    def compute(now: datetime) -> list[CurrentRow]:
        seen.append(now)
        if fail and fail.pop():
            raise RuntimeError("database away")
        return []

    return LivePicture(compute, max_age_s=10.0, clock=clock)


async def test_fresh_rows_are_served_as_they_are_and_recomputed_when_old() -> None:
    clock, seen = _Clock(), list[datetime]()
    picture = _picture(clock, seen)
    first = await picture.read()
    clock.now += 9.9
    assert await picture.read() is first
    clock.now += 0.2
    later = await picture.read()
    assert later is not first
    assert later[0] >= first[0]
    assert picture.computations == len(seen) == 2


async def test_concurrent_readers_of_a_stale_picture_share_one_computation() -> None:
    clock, seen = _Clock(), list[datetime]()
    picture = _picture(clock, seen)
    answers = await asyncio.gather(*(picture.read() for _ in range(20)))
    assert len({id(a) for a in answers}) == 1
    assert len(seen) == 1


async def test_invalidate_forces_the_next_read_and_the_kpi_tick_always_computes() -> None:
    clock, seen = _Clock(), list[datetime]()
    picture = _picture(clock, seen)
    first = await picture.read()
    picture.invalidate()
    assert await picture.read() is not first
    await picture.refresh()
    assert len(seen) == 3
    assert (await picture.read())[0] == seen[-1]  # the tick's rows are the readers' rows


async def test_a_failed_computation_is_raised_and_the_next_read_tries_again() -> None:
    clock, seen = _Clock(), list[datetime]()
    picture = _picture(clock, seen, fail=[False, True])  # pop(): first call fails, second succeeds
    with pytest.raises(RuntimeError, match="database away"):
        await picture.read()
    assert picture.computations == 0
    await picture.read()
    assert picture.computations == 1


async def test_an_invalidation_while_computing_leaves_the_new_rows_stale() -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[datetime] = []

    def slow(now: datetime) -> list[CurrentRow]:
        calls.append(now)
        if len(calls) == 1:
            started.set()
            release.wait(5)
        return []

    picture = LivePicture(slow, max_age_s=10.0)
    reading = asyncio.ensure_future(picture.read())
    await asyncio.to_thread(started.wait, 5)
    picture.invalidate()  # an event stored while the rows were being read may be missing from them
    release.set()
    await reading
    await picture.read()
    assert len(calls) == 2
