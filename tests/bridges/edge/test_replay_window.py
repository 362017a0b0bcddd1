"""The replay window: what was sent shortly before a connection loss, or a crash, goes out again as historical."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from bridges.testing import ScriptedSource
from tests.bridges.edge.conftest import Proxy, edge_config, host_away, running_edge, spb_host_at
from tests.bridges.edge.spb_host import SpbHost, until
from tests.fixtures.mosquitto import Mosquitto, free_port, run_mosquitto
from uns.clock import now_ms

_BASE_MS = now_ms() + 3_600_000
"""Sample i carries timestamp _BASE_MS + i: a replayed sample must keep exactly that.

An hour ahead of the clock, so every sample is newer than the birth before it (a metric born null has
a reading stamped before its birth restamped after it).
"""


def _read(source: ScriptedSource, i: int) -> None:
    source.read("press", {"Count": i}, timestamp_ms=_BASE_MS + i)


def _counts(host: SpbHost, kinds: tuple[str, ...] = ("DDATA",)) -> list[tuple[int, bool, int]]:
    """(value, is_historical, metric timestamp) of every Count the host received in ``kinds``, in order."""
    with host.lock:
        return [
            (int(v), h, ts)  # type: ignore[call-overload]
            for r in host.received
            if r.kind in kinds and r.device == "press"
            for n, v, h, ts in r.resolved
            if n == "Count" and v is not None
        ]


async def _crash_after(
    values: range, port: int, group: str, source: ScriptedSource, host: SpbHost, data_dir: Path
) -> None:
    """Run a node, send ``values`` live, then die with an exception (the journal stays, as after kill -9)."""
    async with running_edge(port, edge_config(group), source, data_dir) as node:
        await until(lambda: node.online, what="births")
        for i in values:
            _read(source, i)
        await until(lambda: len(_counts(host)) == len(values), what="values live")
        raise RuntimeError("simulated crash")


def _journal_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "bridges" / "n1" / "journal").glob("jrn-*.sfb"))


async def _counter(source: ScriptedSource, produced: list[int]) -> None:
    """One counter value every 10 ms until cancelled; ``produced`` tells how far it got."""
    i = 0
    while True:
        _read(source, i)
        produced.append(i)
        i += 1
        await asyncio.sleep(0.01)


async def test_hub_killed_nothing_lost(group: str, source: ScriptedSource, tmp_path: Path) -> None:
    """kill -9 of the broker (the hub) and a new one on the same port: a fresh host sees every value."""
    port = free_port()
    produced: list[int] = []
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(run_mosquitto(port=port))
        async with spb_host_at(port, group) as first, running_edge(port, edge_config(group), source, tmp_path) as node:
            await until(lambda: node.online, what="births")
            producer = asyncio.get_running_loop().create_task(_counter(source, produced))
            try:
                await until(lambda: len(_counts(first)) >= 30, what="30 values live")
                broker.process.kill()  # kill -9: whatever the hub had not stored is gone with it
                await until(lambda: not node.online, what="the node noticing")
                sent_before = node.stats.sent
                await until(lambda: node.stats.buffered >= 10, what="values buffered while the hub is away")
                stack.close()
                stack.enter_context(run_mosquitto(port=port))
                async with spb_host_at(port, group) as second:  # the restarted hub knows nothing of before
                    await until(lambda: node.online and node.stats.buffer_depth == 0, within_s=15, what="replayed")
                    await until(lambda: len(_counts(second)) > 0 and not _counts(second)[-1][1], what="live again")
                    producer.cancel()
                    last = produced[-1]
                    await until(lambda: any(v == last for v, _, _ in _counts(second)), what="the last value")
                    got = _counts(second, ("DBIRTH", "DDATA"))
                    born = {v for v, _, _ in _counts(second, ("DBIRTH",))}
                    assert second.violations == []
            finally:
                producer.cancel()
        assert {v for v, _, _ in got} == set(range(last + 1))  # every value at least once (births included)
        assert all(ts == _BASE_MS + v for v, _, ts in got)  # original timestamps, live or replayed
        historical = [v for v, h, _ in got if h]
        assert historical == sorted(historical)  # in timestamp order
        assert len(historical) == len(set(historical))  # each once
        # starts at 0, no gap but a reading the births carried: read as the link came back, it goes in the DBIRTH
        # and not in the replay, while readings after it go out live, between the replay's chunks
        covered = sorted(set(historical) | {v for v in born if v <= max(historical)})
        assert covered == list(range(len(covered)))
        stats = node.stats
        assert stats.replayed_window == sent_before  # everything sent live was within the 10 s window
        assert stats.window_replays == 1
        assert first.violations == []


async def test_connection_cut_replays_window_ahead_of_buffered(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    async with Proxy(mosquitto.port) as proxy, running_edge(proxy.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: node.online, what="births")
        for i in range(10):
            _read(source, i)
        await until(lambda: len(_counts(spb_host)) == 10, what="10 values live")
        assert len(_journal_files(tmp_path)) == 1
        proxy.kill()
        await until(lambda: not node.online, what="the node noticing")
        for i in range(10, 15):  # buffered after the loss: they must queue behind the window
            _read(source, i)
        await until(lambda: node.stats.connects == 2 and node.stats.buffer_depth == 0, what="reconnected, replayed")
        _read(source, 15)
        await until(lambda: len(_counts(spb_host)) == 25, what="live after the replay")
        got = _counts(spb_host)
        assert got[:10] == [(i, False, _BASE_MS + i) for i in range(10)]
        assert _counts(spb_host, ("DBIRTH",))[-1] == (14, False, _BASE_MS + 14)  # the births carry the newest
        replay = got[10:24]
        assert [(v, h) for v, h, _ in replay] == [(i, True) for i in range(14)]  # window, then buffered, in order
        assert all(ts == _BASE_MS + v for v, _, ts in replay)
        assert got[24] == (15, False, _BASE_MS + 15)
        stats = node.stats
        assert (stats.replayed_window, stats.window_replays, stats.buffered, stats.replayed) == (10, 1, 5, 14)
    assert spb_host.violations == []


async def test_what_a_replay_sent_is_in_the_next_window(
    mosquitto: Mosquitto, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    """Historical samples just replayed to the hub are as unsafe as live ones when the link drops."""
    async with spb_host_at(mosquitto.port, group, online=False) as host:
        async with (
            Proxy(mosquitto.port) as proxy,
            running_edge(proxy.port, edge_config(group), source, tmp_path) as node,
        ):
            for i in range(20):
                _read(source, i)
            await until(lambda: node.stats.buffered == 20, what="20 buffered while the host is offline")
            host.set_online(True)
            await until(lambda: node.online and node.stats.buffer_depth == 0, what="first replay")
            # sent is not received: what is still in the proxy's sockets when it dies is lost, and only
            # the 20 the host holds make the count below exact
            # (the births carry 19, the newest)
            await until(lambda: len(_counts(host)) == 19, what="the first replay at the host")
            proxy.kill()
            await until(lambda: node.stats.connects == 2 and node.online, what="second session")
            await until(lambda: len(_counts(host)) >= 38, what="the window sent again")
            got = _counts(host)
            assert [(v, h) for v, h, _ in got[:38]] == [(i, True) for i in range(19)] * 2
            assert all(ts == _BASE_MS + v for v, _, ts in got)
            # a loaded machine may put the window back once more (a replay is itself journaled): at least once
            assert node.stats.replayed_window >= 20
            assert node.stats.window_replays >= 1
        assert host.violations == []


async def test_a_connection_lost_mid_replay_loses_nothing_and_buffers_no_live_reading(
    mosquitto: Mosquitto, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    """Readings taken during the replay went out live and into the journal, never into the buffer: after a loss
    mid-replay the window (replayed and live samples alike) goes ahead of the backlog not yet sent."""
    backlog, live = 8000, range(20_000, 20_005)
    async with spb_host_at(mosquitto.port, group, online=False) as host:
        async with (
            Proxy(mosquitto.port) as proxy,
            running_edge(proxy.port, edge_config(group), source, tmp_path) as node,
        ):
            for i in range(backlog):
                _read(source, i)
            await until(lambda: node.stats.buffered == backlog, what="the backlog buffered while the host is offline")
            host.set_online(True)
            await until(lambda: node.online, what="births")
            for i in live:
                _read(source, i)
            await until(lambda: {(i, False) for i in live} <= {(v, h) for v, h, _ in _counts(host)}, what="live")
            assert node.stats.buffer_depth > 0, "still replaying"
            proxy.kill()
            await until(lambda: node.stats.connects == 2 and node.online, what="second session")
            await until(lambda: node.stats.buffer_depth == 0, what="second replay", within_s=20.0)
            everything = set(range(backlog)) | set(live)
            await until(
                lambda: {v for v, _, _ in _counts(host, ("DBIRTH", "DDATA"))} >= everything,
                what="every value at the host",
            )
            got = _counts(host)
            assert all(ts == _BASE_MS + v for v, _, ts in got)  # each its own timestamp: consumers dedupe on it
            assert sorted(v for v, h, _ in got if not h) == list(live)  # live once each, never from the buffer
            assert node.stats.buffered == backlog  # nothing read after the births was buffered
            assert max(Counter(v for v, _, _ in got).values()) <= 2  # once, and again in the window at most
        assert host.violations == []


async def test_host_going_offline_replays_the_window(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    """A crashed host never stored what it got last: once it is back, the window comes again, historical."""
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: node.online, what="births")
        for i in range(5):
            _read(source, i)
        await until(lambda: len(_counts(spb_host)) == 5, what="5 values live")
        await host_away(node, spb_host)
        spb_host.set_online(True)
        await until(lambda: node.online and node.stats.buffer_depth == 0, what="births again and replay")
        assert (node.stats.replayed_window, node.stats.window_replays) == (5, 1)
        await until(lambda: len(_counts(spb_host)) == 9, what="the window again")
        got = _counts(spb_host)
        # the births carry 4, the newest; the rest of the window comes again as historical
        assert _counts(spb_host, ("DBIRTH",))[-1] == got[4]
        assert [(v, h) for v, h, _ in got] == [(i, False) for i in range(5)] + [(i, True) for i in range(4)]
        assert [ts for _, _, ts in got[5:]] == [ts for _, _, ts in got[:4]]  # original timestamps
    assert spb_host.violations == []


async def test_deliberate_stop_does_not_replay(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: node.online, what="births")
        for i in range(6):
            _read(source, i)
        await until(lambda: len(_counts(spb_host)) == 6, what="live")
    assert _journal_files(tmp_path) == []  # a deliberate stop empties the journal
    again = ScriptedSource(name="scripted", tags=source.tags())
    async with running_edge(mosquitto.port, edge_config(group), again, tmp_path) as node:
        await until(lambda: node.online, what="births after the restart")
        assert (node.stats.replayed_window, node.stats.window_replays, node.stats.buffer_depth) == (0, 0, 0)
    assert [h for _, h, _ in _counts(spb_host)] == [False] * 6
    assert spb_host.violations == []


async def test_journal_replayed_after_a_crash(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    """The process dies (an exception out of the node, as kill -9 would leave it): the next one replays."""
    with pytest.raises(RuntimeError, match="simulated crash"):
        await _crash_after(range(10), mosquitto.port, group, source, spb_host, tmp_path)
    assert _journal_files(tmp_path) != []
    again = ScriptedSource(name="scripted", tags=source.tags())
    async with running_edge(mosquitto.port, edge_config(group), again, tmp_path) as node:
        assert (node.stats.replayed_window, node.stats.window_replays) == (10, 1)  # put back on entering
        assert _journal_files(tmp_path) == []
        await until(lambda: len(_counts(spb_host)) == 20, what="the window sent again after the restart")
        assert node.stats.buffer_depth == 0
        got = _counts(spb_host)
        assert got == [(i, False, _BASE_MS + i) for i in range(10)] + [(i, True, _BASE_MS + i) for i in range(10)]
    assert spb_host.violations == []


async def test_old_journal_is_not_replayed(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="simulated crash"):
        await _crash_after(range(1), mosquitto.port, group, source, spb_host, tmp_path)
    stale = time.time() - 11  # older than the 10 s window
    for path in _journal_files(tmp_path):
        os.utime(path, (stale, stale))
    again = ScriptedSource(name="scripted", tags=source.tags())
    async with running_edge(mosquitto.port, edge_config(group), again, tmp_path) as node:
        assert (node.stats.replayed_window, node.stats.buffer_depth) == (0, 0)
    assert _journal_files(tmp_path) == []


async def test_window_zero_journals_nothing(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    config = edge_config(group, replay_window_s=0)
    async with Proxy(mosquitto.port) as proxy, running_edge(proxy.port, config, source, tmp_path) as node:
        await until(lambda: node.online, what="births")
        for i in range(5):
            _read(source, i)
        await until(lambda: len(_counts(spb_host)) == 5, what="5 values live")
        assert not (tmp_path / "bridges" / "n1" / "journal").exists()
        proxy.kill()
        await until(lambda: node.stats.connects == 2 and node.online, what="reconnected")
        _read(source, 5)
        await until(lambda: len(_counts(spb_host)) == 6, what="live again")
        assert [h for _, h, _ in _counts(spb_host)] == [False] * 6
        assert (node.stats.replayed_window, node.stats.window_replays) == (0, 0)
    assert not (tmp_path / "bridges" / "n1" / "journal").exists()
    assert spb_host.violations == []
