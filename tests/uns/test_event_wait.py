"""``uns.event_wait.set_within``: whether an event was set within a time, and a cancel never swallowed."""

from __future__ import annotations

import asyncio

import pytest

from tests.exports import assert_all_is_honest
from uns.event_wait import set_within


async def test_a_set_event_answers_at_once_whatever_the_time() -> None:
    event = asyncio.Event()
    event.set()
    assert await set_within(event, 0) is True
    assert await set_within(event, -1) is True


async def test_an_event_set_while_waiting_answers_true() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await set_within(event, 30) is True
    event.clear()
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await set_within(event, None) is True  # no limit


async def test_an_event_not_set_in_time_answers_false() -> None:
    assert await set_within(asyncio.Event(), 0.01) is False
    assert await set_within(asyncio.Event(), 0) is False


async def test_a_cancel_arriving_as_the_event_is_set_is_not_swallowed() -> None:
    event = asyncio.Event()
    task = asyncio.create_task(set_within(event, 30), name="test.set-within")
    await asyncio.sleep(0)  # the task waits on the event
    event.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_all_is_honest() -> None:
    assert_all_is_honest("uns.event_wait")
