"""Login throttling's failure tracker (uns/broker/throttle.py) on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from uns.broker.throttle import CheckSlots, FailureTracker


@pytest.mark.parametrize(
    ("failures", "blocked_for"),
    [(2, 0.0), (3, 1.0), (4, 2.0), (5, 4.0), (9, 10.0)],  # limit 3, block 1 s doubling, at most 10 s
)
def test_refusal_periods_double_up_to_the_cap(failures: int, blocked_for: float) -> None:
    now = [0.0]
    tracker = FailureTracker(limit=3, block_s=1.0, max_block_s=10.0, forget_after_s=600.0, clock=lambda: now[0])
    for _ in range(failures):
        now[0] += 100.0  # past any refusal period, within forget_after_s
        assert not tracker.refused("a")
        tracker.begin("a")
        tracker.end("a", ok=False)
    last = now[0]
    if blocked_for:
        now[0] = last + blocked_for - 0.01
        assert tracker.refused("a")
    now[0] = last + blocked_for + 0.01
    assert not tracker.refused("a")


def test_a_flood_of_new_keys_never_frees_a_blocked_one() -> None:
    tracker = FailureTracker(limit=1, block_s=60.0, max_block_s=60.0, forget_after_s=600.0, max_keys=10)
    tracker.begin("attacker")
    tracker.end("attacker", ok=False)
    for index in range(100):
        tracker.begin(f"fake-{index}")
        tracker.end(f"fake-{index}", ok=None)
    assert tracker.refused("attacker")
    assert len(tracker) == 10


async def test_password_check_slots_serve_unsuspected_addresses_first() -> None:
    slots = CheckSlots(1)
    await slots.acquire(0)  # a check is running
    order: list[str] = []

    async def wait(name: str, priority: int) -> None:
        await slots.acquire(priority)
        order.append(name)
        slots.release()

    tasks = [asyncio.create_task(wait(name, priority)) for name, priority in (("a", 1), ("b", 1), ("good", 0))]
    await asyncio.sleep(0)  # all three queue
    slots.release()
    await asyncio.gather(*tasks)
    assert order == ["good", "a", "b"]


async def test_a_cancelled_waiter_gives_its_slot_on() -> None:
    slots = CheckSlots(1)
    await slots.acquire(0)
    gone = asyncio.create_task(slots.acquire(0))
    await asyncio.sleep(0)
    gone.cancel()
    slots.release()
    await asyncio.wait_for(slots.acquire(0), 1)  # the slot was not lost with the cancelled waiter
