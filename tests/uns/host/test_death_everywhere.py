"""A machine that dies by its will reads stale everywhere: the host, the historian's latest, the web topic cache and
the MES state, with a real broker, a third-party edge node whose will was registered a day before it died, the real
host, historian, topic cache and MES adapter; and born again, good everywhere, whatever its births' read times."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest

from model.config import DeriveRule
from tests.fixtures.consumers import Consumers, hub_clients, retained, running_consumers
from tests.fixtures.hub import RunningHub
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import DOUBLE, INT32, RawEdgeNode, metric, now_ms, read_at
from uns.mes.states import UNKNOWN
from uns.sparkplug import sparkplug_b_pb2 as pb

_DAY_MS = 86_400_000


def _state_rule(hub: RunningHub) -> list[DeriveRule]:
    """The MES reads the filler's State: 1 is producing (10000)."""
    return [DeriveRule(match=f"{hub.enterprise}/+/+/+/+/data/State", kind="state", state_map={1: 10000})]


async def test_a_machine_killed_long_after_it_connected_reads_stale_everywhere(hub: RunningHub, tmp_path: Path) -> None:
    temp, state = f"{hub.cell}/data/Temp", f"{hub.cell}/data/State"
    async with running_consumers(hub, tmp_path, derive=_state_rule(hub)) as seen:
        # the will, like Tahu's and every edge node's, is stamped when registered: here a day before the death
        edge = RawEdgeNode(hub.url, hub.group, hub.node, will_ms=now_ms() - _DAY_MS)
        await edge.start()
        try:
            born = [metric("Temp", 20.0, DOUBLE, alias=1), metric("State", 1, INT32, alias=2)]
            for m in born:
                m.timestamp -= 1000  # a second before the DATA (history keeps one value per millisecond)
            edge.nbirth([])
            edge.send("DBIRTH", born, "filler")
            edge.send("DDATA", [metric(None, 25.0, DOUBLE, alias=1, with_datatype=False)], "filler")
            await until(lambda: [v for v, *_ in seen.latest(temp)] == [25.0], what="the good 25.0 stored")
            await until(lambda: seen.mes_state(hub.cell) == 10000, what="MES: producing")
            ((_, _, good_ms),) = seen.latest(temp)
            assert isinstance(good_ms, int)
            killed_ms = now_ms()
            edge.kill()  # no DISCONNECT: the broker publishes the will
            await until(lambda: [q for _, q, _ in seen.latest(temp)] == ["stale"], what="historian latest stale")
        finally:
            edge.stop()
        ((value, _, stale_ms),) = seen.latest(temp)
        assert value == 25.0
        assert isinstance(stale_ms, int)
        assert stale_ms >= max(killed_ms, good_ms + 1)  # when the hub learnt of it, after the good value
        assert stale_ms <= now_ms()
        # raw history: good 20.0, good 25.0, then one stale row after them (none from before the birth)
        assert [(v, q) for v, q, _ in seen.samples(temp)] == [(20.0, "good"), (25.0, "good"), (25.0, "stale")]
        assert seen.latest(state)[0][1] == "stale"
        await until(lambda: seen.cached(temp) == (25.0, "stale", stale_ms), what="web topic cache stale")
        assert seen.cached(state)[1] == "stale"
        node = seen.cache.node(f"{hub.cell}/data")
        assert node is not None
        assert node.problems == 2  # Temp and State: the tree's problems filter finds the dead cell
        await until(lambda: seen.mes_state(hub.cell) == UNKNOWN, what="MES: unknown (no data) once dead")


def _born_read_at(read_ms: int) -> list[pb.Payload.Metric]:
    """The filler's DBIRTH: Temp 20.0 and State 1 (producing), each read at ``read_ms``."""
    return [
        read_at(metric("Temp", 20.0, DOUBLE, alias=1), read_ms),
        read_at(metric("State", 1, INT32, alias=2), read_ms),
    ]


async def _born_again(hub: RunningHub, seen: Consumers, temp: str, read_ms: int) -> tuple[int, int]:
    """The edge node connects again (bdSeq 1) with the filler's tags unchanged, read at ``read_ms``; once the
    historian's latest of ``temp`` is good: (when the births were sent, the latest's timestamp)."""
    again = RawEdgeNode(hub.url, hub.group, hub.node, bd_seq=1)
    await again.start()
    try:
        sent_ms = now_ms()
        again.nbirth([])
        again.send("DBIRTH", _born_read_at(read_ms), "filler")
        await until(lambda: [q for _, q, _ in seen.latest(temp)] == ["good"], what="historian latest good again")
    finally:
        again.stop()
    ((value, _, good_ms),) = seen.latest(temp)
    assert value == 20.0
    assert isinstance(good_ms, int)
    return sent_ms, good_ms


async def test_a_machine_born_again_with_its_tags_read_times_reads_good_everywhere(
    hub: RunningHub, tmp_path: Path
) -> None:
    # an edge node whose tags keep their last-change time (Ignition's transmitters) sends it in every birth: after a
    # death, a time before the stale mark, which stamped so would stay the newest sample until the value changed
    temp, state = f"{hub.cell}/data/Temp", f"{hub.cell}/data/State"
    async with running_consumers(hub, tmp_path, derive=_state_rule(hub)) as seen:
        read_ms = now_ms() - 1000
        edge = RawEdgeNode(hub.url, hub.group, hub.node)
        await edge.start()
        try:
            edge.nbirth([])
            edge.send("DBIRTH", _born_read_at(read_ms), "filler")
            await until(lambda: seen.mes_state(hub.cell) == 10000, what="MES: producing")
            edge.kill()
            await until(lambda: [q for _, q, _ in seen.latest(temp)] == ["stale"], what="historian latest stale")
            await until(lambda: seen.mes_state(hub.cell) == UNKNOWN, what="MES: unknown once dead")
        finally:
            edge.stop()
        ((_, _, stale_ms),) = seen.latest(temp)
        assert isinstance(stale_ms, int)
        sent_ms, good_ms = await _born_again(hub, seen, temp, read_ms)
        assert max(sent_ms, stale_ms + 1) <= good_ms <= now_ms()  # at the birth (its payload's time), after the mark
        assert [(v, q) for v, q, _ in seen.samples(temp)] == [(20.0, "good"), (20.0, "stale"), (20.0, "good")]
        assert seen.latest(state)[0][1] == "good"
        await until(lambda: seen.cached(temp) == (20.0, "good", good_ms), what="web topic cache good")
        assert (await retained(hub, temp))["quality"] == "good"
        await until(lambda: seen.mes_state(hub.cell) == 10000, what="MES: producing again")


async def test_a_machine_down_across_a_restart_of_the_hub_reads_good_when_born_again(
    hub: RunningHub, tmp_path: Path
) -> None:
    # the stale marks a birth sorts after outlive the host: its retained node status carries them (stale_ms), and a
    # host starting reads them back; without them the birth's old read times leave the stale mark the newest sample
    temp = f"{hub.cell}/data/Temp"
    status_topic = f"{hub.enterprise}/hub/host/nodes/{hub.group}/{hub.node}"
    async with running_consumers(hub, tmp_path, derive=_state_rule(hub)) as seen:
        read_ms = now_ms() - 1000
        edge = RawEdgeNode(hub.url, hub.group, hub.node)
        await edge.start()
        try:
            edge.nbirth([])
            edge.send("DBIRTH", _born_read_at(read_ms), "filler")
            await until(lambda: [q for _, q, _ in seen.latest(temp)] == ["good"], what="historian latest good")
            edge.kill()
            await until(lambda: [q for _, q, _ in seen.latest(temp)] == ["stale"], what="historian latest stale")
        finally:
            edge.stop()
        ((_, _, stale_ms),) = seen.latest(temp)
        assert isinstance(stale_ms, int)
        status = await retained(hub, status_topic)
        assert status["online"] is False
        assert isinstance(status["stale_ms"], int)  # the node's own table (its bdSeq)
        filler = status["devices"]["filler"]  # type: ignore[index]
        assert (filler["online"], filler["metrics"], filler["stale_ms"]) == (False, 2, stale_ms)
        await hub.restart_host()  # a new host on the same broker, which holds the status and the stale values
        sent_ms, good_ms = await _born_again(hub, seen, temp, read_ms)
        assert max(sent_ms, stale_ms + 1) <= good_ms <= now_ms()  # after the pre-restart mark
        assert [(v, q) for v, q, _ in seen.samples(temp)] == [(20.0, "good"), (20.0, "stale"), (20.0, "good")]
        await until(lambda: seen.cached(temp) == (20.0, "good", good_ms), what="web topic cache good")
        envelope = await retained(hub, temp)
        assert (envelope["quality"], envelope["timestamp_ms"]) == ("good", good_ms)
        health = hub.host.core.health()
        assert health["births"] == 2  # the new host's NBIRTH and DBIRTH: the seeding counted nothing
        assert health["rejected"] == {}
        status = await retained(hub, status_topic)
        assert status["devices"]["filler"]["stale_ms"] is None  # type: ignore[index]  # born since its mark


async def test_a_malformed_retained_status_is_ignored_with_a_log_line_at_a_restart(
    hub: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    bad = f"{hub.enterprise}/hub/host/nodes/{hub.group}/edge9"
    async with hub_clients(hub)(client_id="test-bad-status") as client:
        await client.publish(bad, b'{"online": false, "stale_ms": "yesterday"}', qos=1, retain=True)
    with caplog.at_level(logging.WARNING, logger="uns.host"):
        await hub.restart_host()
    assert hub.host.core.health()["rejected"] == {"bad_status": 1}
    (line,) = [r.getMessage() for r in caplog.records if "bad_status" in r.getMessage()]
    assert bad in line
    assert "stale_ms: not a time in ms or null" in line
    assert hub.host.core.health()["nodes_known"] == 0
    edge = RawEdgeNode(hub.url, hub.group, hub.node)  # the host works on
    await edge.start()
    try:
        edge.nbirth([])
        edge.send("DBIRTH", _born_read_at(now_ms()), "filler")
        await until(lambda: hub.host.core.health()["births"] == 2, what="the births taken")
    finally:
        edge.stop()


async def test_another_hubs_live_statuses_neither_seed_nor_hold_up_a_restart(
    hub: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    # two hubs on one broker publish the same node status topics; the other's live ones (not retained) are no marks
    # of ours, and the read-back at start waits for retained ones alone (before a13d83f each live one restarted the
    # wait, holding the start to the 3 s cap)
    ours = f"{hub.enterprise}/hub/host/nodes/{hub.group}/edge8"
    theirs = f"{hub.enterprise}/hub/host/nodes/{hub.group}/edge7"
    async with hub_clients(hub)(client_id="test-other-hub") as client:
        marked = orjson.dumps({"online": False, "stale_ms": now_ms() - 1000, "devices": {}})
        await client.publish(ours, marked, qos=1, retain=True)

        async def other_hub() -> None:
            while True:
                await client.publish(theirs, orjson.dumps({"online": False, "stale_ms": now_ms(), "devices": {}}))
                await asyncio.sleep(0.005)

        publishing = asyncio.create_task(other_hub())
        try:
            with caplog.at_level(logging.DEBUG, logger="uns.host.service"):
                await hub.restart_host()
        finally:
            publishing.cancel()
    # not by the clock (a loaded box makes any start slow): how the read-back ended, the host's own word for it
    assert "retained node statuses read back: 1, ended quiet" in caplog.text
    assert hub.host.core.health()["nodes_known"] == 1  # edge8, from its retained status; edge7's live ones not taken
