"""A sink process killed mid-stream and started again: the scenario every sink's crash test runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.crash_rig import kill9, spawn, stopped_at_exit
from tests.fixtures.broker import publisher
from tests.fixtures.processes import stop_process
from tests.fixtures.waiting import until
from uns.mqtt.types import Message

__all__ = ["Killed", "killed_mid_stream"]


@dataclass(frozen=True)
class Killed:
    """What the sink had stored when it was killed, how long the second one took, and how it stopped."""

    at_kill: int
    restarted_s: float
    exit_code: int


async def killed_mid_stream(
    args: list[str],
    log: Path,
    broker_url: str,
    message: Callable[[int], Message],
    *,
    total: int,
    chunk: int,
    stored: Callable[[], int],
    some: int,
    all_in: Callable[[], bool],
    what: str,
) -> Killed:
    """``uns <args>`` (a sink) while ``message(0..total-1)`` stream to it ``chunk`` at a time, SIGKILLed once
    ``stored() >= some``; then started again until ``all_in()`` (60 s) and stopped with SIGTERM."""

    async def stream() -> None:
        async with publisher(broker_url) as pub:
            for at in range(0, total, chunk):
                await pub.publish_many([message(i) for i in range(at, at + chunk)])
                await asyncio.sleep(0.02)

    with stopped_at_exit(spawn(args, log)) as first:
        # the sink's session exists before the stream starts: a persistent session queues what it misses
        await until(lambda: "uns-sink ready" in log.read_text(), within_s=30, what="the first sink ready")
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(stream())
            await until(lambda: stored() >= some, within_s=30, what=f"some {what} stored")
            await asyncio.to_thread(kill9, first)
            at_kill = stored()
    started = time.monotonic()
    with stopped_at_exit(spawn(args, log)) as second:
        await until(all_in, within_s=60, what=f"all {total} {what} after the restart")
        exit_code = stop_process(second, 20)
    return Killed(at_kill=at_kill, restarted_s=time.monotonic() - started, exit_code=exit_code)
