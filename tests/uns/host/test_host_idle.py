"""The inline host's tick task wakes only for what is due: never while idle, once for a rebirth to ask."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fixtures.hub import running_host
from tests.fixtures.timers import timers_by_task
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import INT64, edge_and_watcher, metric, payload
from uns.host.core import HostCore


async def test_an_idle_host_s_tick_task_schedules_no_timer(tmp_path: Path) -> None:
    async with running_host("embedded", None, tmp_path) as hub:
        with timers_by_task() as timers:
            await asyncio.sleep(1.0)  # idle: the time itself is what is measured
    assert timers["uns.host.ticks"] == 0, timers  # was 4: a 0.25 s tick, always
    assert isinstance(hub.host.core, HostCore)
    assert hub.host.core.due_ms is None


async def test_a_late_nbirth_s_rebirth_is_asked_on_one_timer(tmp_path: Path) -> None:
    async with (
        running_host("embedded", None, tmp_path) as hub,
        edge_and_watcher(hub.url, hub.group, hub.node, [f"{hub.enterprise}/#"], bd_seq=5) as (edge, _watcher),
    ):
        edge.nbirth([metric("Uptime", 12, INT64)])
        await until(lambda: hub.host.core.counters.births == 1, what="the NBIRTH taken")
        with timers_by_task() as timers:
            edge.publish("NDEATH", payload([metric("bdSeq", 5, INT64)], None))
            edge.nbirth([metric("Uptime", 13, INT64)])  # late: its rebirth is asked a second later
            await until(lambda: edge.rebirth_requests() == 1, what="the rebirth asked after the late NBIRTH")
        assert hub.host.core.counters.rejected["late_nbirth"] == 1
    assert timers["uns.host.ticks"] == 1, timers  # was 4 or 5: a 0.25 s tick
    assert isinstance(hub.host.core, HostCore)
    assert hub.host.core.due_ms is None  # nothing left to wake for
