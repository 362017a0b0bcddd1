"""A machine that dies by its will reads stale everywhere: the host, the historian's latest, the web topic cache and
the MES state, with a real broker, a third-party edge node whose will was registered a day before it died, the real
host, historian, topic cache and MES adapter."""

from __future__ import annotations

from pathlib import Path

from model.config import DeriveRule
from tests.fixtures.consumers import running_consumers
from tests.fixtures.hub import RunningHub
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import DOUBLE, INT32, RawEdgeNode, metric, now_ms
from uns.mes.states import UNKNOWN

_DAY_MS = 86_400_000


async def test_a_machine_killed_long_after_it_connected_reads_stale_everywhere(hub: RunningHub, tmp_path: Path) -> None:
    temp, state = f"{hub.cell}/data/Temp", f"{hub.cell}/data/State"
    derive = [DeriveRule(match=f"{hub.enterprise}/+/+/+/+/data/State", kind="state", state_map={1: 10000})]
    async with running_consumers(hub, tmp_path, derive=derive) as seen:
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
