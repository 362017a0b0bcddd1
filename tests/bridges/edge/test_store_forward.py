"""Store-and-forward: host offline, broker restarts, the bounded buffer, and buffered data across restarts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from bridges.edge import EdgeNode
from bridges.edge.buffer import BufferedBatch, DiskBuffer
from bridges.source import TagSpec
from bridges.testing import ScriptedSource
from tests.bridges.edge.conftest import edge_config, edge_of_hub, host_away, running_edge, spb_host_at
from tests.bridges.edge.spb_host import SpbHost, now_ms, quality_of, string_property, until
from tests.fixtures.consumers import retained, running_consumers
from tests.fixtures.hub import running_host
from tests.fixtures.mosquitto import Mosquitto, free_port, run_mosquitto
from tests.fixtures.reading import rows
from uns.sparkplug import DataType, Metric, PropertySet, PropertyValue


def _bd_seqs(host: SpbHost) -> list[int]:
    return [m.long_value for r in host.of("NBIRTH") for m in r.payload.metrics if m.name == "bdSeq"]


@pytest.mark.parametrize("legacy", [False, True], ids=["json-state", "legacy-state"])
async def test_host_offline_buffers_then_replays_in_order(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path, legacy: bool
) -> None:
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: node.online, what="births")
        spb_host.set_online(False, legacy=legacy)
        await until(lambda: spb_host.count("NDEATH") == 1, what="NDEATH when the host goes offline")
        await until(lambda: node.stats.connects == 2 and not node.online, what="reconnected, waiting for the host")
        for i in range(100, 150):
            source.read("press", {"Count": i})
        await until(lambda: node.stats.buffered == 50, what="50 samples buffered")
        assert spb_host.values("press", "Count") == []
        spb_host.set_online(True, legacy=legacy)
        await until(lambda: node.stats.buffer_depth == 0 and node.online, what="replay")
        source.read("press", {"Count": 150})
        await until(lambda: (150, False) in spb_host.values("press", "Count"), what="live data after the replay")
        # the births carry the newest buffered value, the rest come as historical
        assert spb_host.values("press", "Count", kinds=("DBIRTH",))[-1] == (149, False)
        assert spb_host.values("press", "Count") == [(i, True) for i in range(100, 149)] + [(150, False)]
        assert (node.stats.replayed, node.stats.buffered) == (49, 50)
        assert _bd_seqs(spb_host) == [0, 1]
        # births come before the buffered data
        kinds = [r.kind for r in spb_host.received if r.kind != "NDATA"]
        second_birth = [i for i, k in enumerate(kinds) if k == "NBIRTH"][1]
        assert kinds[second_birth : second_birth + 3] == ["NBIRTH", "DBIRTH", "DBIRTH"]
    assert spb_host.violations == []


async def test_broker_restart_loses_nothing(group: str, source: ScriptedSource, tmp_path: Path) -> None:
    port = free_port()
    stack = contextlib.ExitStack()
    broker = stack.enter_context(run_mosquitto(port=port))
    host = SpbHost(broker.port, group, f"host-{group}")
    await host.start()
    try:
        async with running_edge(port, edge_config(group), source, tmp_path) as node:
            await until(lambda: node.online, what="births")
            source.read("press", {"Count": 1})
            await until(lambda: spb_host_has(host, 1), what="live data")
            stack.close()  # the broker goes away
            await until(lambda: not node.online, what="the node noticing")
            for i in range(2, 22):
                source.read("press", {"Count": i})
            await until(lambda: node.stats.buffered == 20, what="buffered while the broker is away")
            stack.enter_context(run_mosquitto(port=port))
            await until(lambda: node.online and node.stats.buffer_depth == 0, within_s=15, what="back and replayed")
            source.read("press", {"Count": 22})
            await until(lambda: spb_host_has(host, 22), what="live data after the restart")
            # 1 went out live inside the replay window, so it comes again as historical (consumers dedupe);
            # the births carry 21, the newest
            replayed = [(1, True)] + [(i, True) for i in range(2, 21)]
            assert host.values("press", "Count", kinds=("DBIRTH",))[-1] == (21, False)
            assert host.values("press", "Count") == [(1, False), *replayed, (22, False)]
            assert _bd_seqs(host)[0] < _bd_seqs(host)[-1]
        assert host.violations == []
    finally:
        host.stop()
        stack.close()


def spb_host_has(host: SpbHost, value: int) -> bool:
    return any(v == value for v, _ in host.values("press", "Count"))


async def test_bounded_buffer_drops_oldest(
    mosquitto: Mosquitto, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    async with spb_host_at(mosquitto.port, group, online=False) as host:
        config = edge_config(group, buffer_max_bytes=1024)
        async with running_edge(mosquitto.port, config, source, tmp_path) as node:
            for i in range(300):
                source.read("press", {"Count": i})
            await until(lambda: node.stats.buffered == 300, what="300 buffered")
            stats = node.stats
            assert stats.dropped > 0
            assert stats.buffer_depth == 300 - stats.dropped
            assert stats.buffer_bytes <= 1024 + 512
            host.set_online(True)
            await until(lambda: node.online and node.stats.buffer_depth == 0, what="replay")
            # the buffer is empty once the replay is sent; the checking host gets it a moment later (a loaded box)
            want = [(i, True) for i in range(stats.dropped, 299)]  # the newest survive, in order
            await until(lambda: len(host.values("press", "Count")) >= len(want), what="the replay at the host")
            assert host.values("press", "Count") == want
            assert host.values("press", "Count", kinds=("DBIRTH",)) == [(299, False)]  # the births carry the last
            assert node.stats.replayed + node.stats.dropped == 299
            assert node.stats.errors >= node.stats.dropped
        assert host.violations == []


async def test_buffer_survives_a_restart_of_the_node(
    mosquitto: Mosquitto, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    async with spb_host_at(mosquitto.port, group, online=False) as host:
        async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
            for i in range(10):
                source.read("press", {"Count": i})
            await until(lambda: node.stats.buffered == 10, what="10 buffered")
        host.set_online(True)
        again = ScriptedSource(name="scripted", tags=source.tags())
        async with running_edge(mosquitto.port, edge_config(group), again, tmp_path) as node:
            await until(lambda: node.online and node.stats.replayed == 10, what="replay after restart")
            await until(lambda: len(host.values("press", "Count")) == 10, what="the host got the replay")
            assert host.values("press", "Count") == [(i, True) for i in range(10)]
        assert host.violations == []


def _buffer_of_n1(data_dir: Path) -> DiskBuffer:
    """The disk buffer ``running_edge``'s node (n1) opens under ``data_dir`` (``EdgeNode``: ``bridges/<node>``)."""
    return DiskBuffer(directory=data_dir / "bridges" / "n1", max_bytes=1 << 20, name="n1")


async def test_a_buffer_written_with_the_opc_uncertain_code_replays_sparkplug_codes(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    # records as edge nodes buffered them before 7388ebf: uncertain as the OPC code 64, good at 192, bad at 0
    def old(value: int, code: int) -> Metric:
        quality = PropertySet({"Quality": PropertyValue(type=DataType.Int32, value=code)})
        return Metric(
            name="Count", timestamp=now_ms() - 1000 + value, datatype=DataType.Int64, value=value, properties=quality
        )

    with _buffer_of_n1(tmp_path) as buffer:
        buffer.append(BufferedBatch("press", (old(1, 64), old(2, 100), old(3, 0), old(4, 192))))
    source.read("press", {"Count": 9})
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: node.online and node.stats.replayed == 4, what="the old buffer replayed")
        await until(lambda: len(spb_host.values("press", "Count")) == 4, what="the host got the replay")
    replayed = [m for r in spb_host.of("DDATA", "press") for m in r.payload.metrics if m.is_historical]
    # Sparkplug 3.0's codes only (tck-id-payloads-propertyset-quality-value-value); uncertain named as live ones are
    assert [(m.long_value, quality_of(m), string_property(m, "QualityName")) for m in replayed] == [
        (1, 0, "uncertain"),
        (2, 0, "uncertain"),
        (3, 0, None),
        (4, 192, None),
    ]
    assert spb_host.violations == []


async def test_buffered_samples_of_a_device_or_metric_no_longer_configured_are_dropped_counted_and_named(
    mosquitto: Mosquitto,
    spb_host: SpbHost,
    group: str,
    source: ScriptedSource,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a buffer written under another config: a device the source no longer has (mixer), a metric gone from one
    # it has (press/Gone); no birth can declare them, so they cannot be sent, and are neither counted replayed
    def sample(name: str, i: int) -> Metric:
        return Metric(name=name, timestamp=now_ms() - 1000 + i, datatype=DataType.Int64, value=i)

    with _buffer_of_n1(tmp_path) as buffer:
        for i in range(3):
            buffer.append(BufferedBatch("mixer", (sample("Speed", i),)))
            buffer.append(BufferedBatch("press", (sample("Count", i), sample("Gone", i))))
    source.read("press", {"Count": 9})
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: node.online and node.stats.buffer_depth == 0, what="the old buffer replayed")
        await until(lambda: len(spb_host.values("press", "Count")) == 3, what="the host got the replay")
        assert spb_host.values("press", "Count") == [(i, True) for i in range(3)]
        assert (node.stats.replayed, node.stats.errors) == (3, 6)  # 3 sent; 3 Speed and 3 Gone dropped, each an error
    assert "device 'mixer' metric 'Speed' dropped" in caplog.text
    assert "device 'press' metric 'Gone' dropped" in caplog.text
    assert spb_host.violations == []


async def test_a_reading_during_the_replay_goes_out_live(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    # read after the births, a value is current (is_historical marks one that is not): it goes out live at once,
    # between the replay's chunks, and is never buffered; the transient Temp goes in the same DDATA
    config = edge_config(group, transient_tags=["press/Temp"])
    async with running_edge(mosquitto.port, config, source, tmp_path) as node:
        await host_away(node, spb_host)
        for i in range(5000):
            source.read("press", {"Count": i, "Temp": 50.0})
        await until(lambda: node.stats.buffered == 5000, what="5000 counts buffered")
        spb_host.set_online(True)
        await until(lambda: node.online, what="births after the host came back", within_s=10.0)
        assert node.stats.buffer_depth > 0, "the replay is under way"
        sent = node.stats.sent
        source.read("press", {"Count": 9000, "Temp": 99.0})
        # the depth as the node sent it (its own count, polled on its loop: a chunk or so later), not as the checking
        # host, a paho thread parsing each message, saw it: that one may lag by more than the replay has left
        await until(lambda: node.stats.sent > sent, what="the reading sent")
        depth = node.stats.buffer_depth
        await until(lambda: (9000, False) in spb_host.values("press", "Count"), what="the reading sent live")
        await until(lambda: (4998, True) in spb_host.values("press", "Count"), what="the rest of the replay")
        counts = spb_host.values("press", "Count")
        live_at = counts.index((9000, False))
        assert depth > 0, "it went out while the replay still ran"
        assert (4998, True) in counts[live_at:]  # ... ahead of the backlog's last chunks
        assert counts.count((9000, False)) == 1  # live once
        assert (9000, True) not in counts  # never as history
        assert [v for v, h in counts if h] == list(range(4999))  # the backlog: history, each once, in order
        live = [
            r for r in spb_host.of("DDATA", "press") if any(n == "Count" and v == 9000 for n, v, _, _ in r.resolved)
        ]
        assert [(n, v, h) for n, v, h, _ in live[0].resolved] == [("Count", 9000, False), ("Temp", 99.0, False)]
        assert node.stats.buffered == 5000  # nothing read after the births was buffered
    assert spb_host.violations == []  # seq in order, births first, aliases known


async def test_a_busy_node_neither_starves_the_replay_nor_is_starved_by_it(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    # a reading every millisecond or so all through the replay: the replay takes turns with the readings under
    # the node's lock, so it ends while they keep coming, and they reach the host live meanwhile
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await host_away(node, spb_host)
        for i in range(5000):
            source.read("press", {"Count": i})
        await until(lambda: node.stats.buffered == 5000, what="5000 counts buffered")
        spb_host.set_online(True)
        await until(lambda: node.online, what="births after the host came back")
        produced: list[int] = []

        async def busy() -> None:
            for i in range(100_000, 1_000_000):
                source.read("press", {"Count": i})
                produced.append(i)
                await asyncio.sleep(0.001)

        counter = asyncio.get_running_loop().create_task(busy(), name="test.busy-source")
        try:
            await until(lambda: node.stats.buffer_depth == 0, what="the replay done while readings keep coming")
            assert not counter.done()
            await until(lambda: len(produced) >= 20, what="readings still coming after the replay")
        finally:
            counter.cancel()
        last = produced[-1]
        await until(lambda: any(v == last for v, _ in spb_host.values("press", "Count")), what="the last reading")
        counts = spb_host.values("press", "Count")
        history_ends = max(i for i, (_, h) in enumerate(counts) if h)
        assert [v for v, h in counts if h] == list(range(4999))  # the backlog, in order, each once
        assert [v for v, h in counts if not h] == produced  # every busy reading live, in order, each once
        assert any(not h for _, h in counts[:history_ends]), "live readings reached the host during the replay"
        assert node.stats.buffered == 5000
    assert spb_host.violations == []


async def test_during_a_long_replay_the_uns_shows_the_newest_reading_and_history_gets_everything_once(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # our edge node, the real host and historian on Mosquitto; the edge's primary host is a checker the test
    # turns off and on, so the edge buffers a backlog and replays it while the hub keeps running
    source = ScriptedSource(
        name="scripted", tags=[TagSpec("filler", "Count", DataType.Int64), TagSpec("filler", "Temp", DataType.Double)]
    )
    backlog = 10_000
    async with contextlib.AsyncExitStack() as stack:
        hub = await stack.enter_async_context(running_host("mosquitto", mosquitto, tmp_path))
        historian = (await stack.enter_async_context(running_consumers(hub, tmp_path / "history", derive=[]))).historian
        gate, edge = await stack.enter_async_context(edge_of_hub(mosquitto.port, hub, source, tmp_path))
        count, temp = f"{hub.cell}/data/Count", f"{hub.cell}/data/Temp"
        source.read("filler", {"Count": 0, "Temp": 20.0})
        await host_away(edge, gate)
        before = edge.stats.buffered  # the first reading, taken before the first births
        for i in range(1, backlog + 1):
            source.read("filler", {"Count": i})  # a slow Temp: report by exception sends it no more
        await until(lambda: edge.stats.buffered == before + backlog, what="the backlog buffered")
        gate.set_online(True)
        await until(lambda: edge.online, what="births after the host came back")
        assert edge.stats.buffer_depth > 0, "the replay is under way"
        read_at = time.monotonic()
        source.read("filler", {"Count": backlog + 1, "Temp": 99.0})

        async def retained_value(topic: str) -> object:
            return (await retained(hub, topic))["value"]

        while await retained_value(temp) != 99.0:
            assert time.monotonic() - read_at < 1.0, f"the UNS still shows Temp {await retained_value(temp)} after 1 s"
        assert edge.stats.buffer_depth > 0, "the replay still runs"
        assert await retained_value(count) == backlog + 1

        def stored(topic: str) -> list[tuple[object, ...]]:
            return rows(
                historian,
                "SELECT count(*), count(DISTINCT value), min(value), max(value), count(*) FILTER (WHERE historical)"
                " FROM samples JOIN series USING (series_id) WHERE topic = ? AND quality = 'good'",
                [topic],  # the stale mark of the death when the host went away is a sample of its own
            )

        everything = backlog + 2  # 0 in the first birth, the backlog (its last in the second birth), the live one
        await until(lambda: stored(count)[0][0] == everything, within_s=30.0, what=f"history: {stored(count)}")
        await until(lambda: edge.stats.buffer_depth == 0, what="the replay done")
        assert stored(count) == [(everything, everything, 0.0, float(backlog + 1), backlog - 1)]  # each once
        assert rows(
            historian,
            "SELECT value, historical FROM samples JOIN series USING (series_id)"
            " WHERE topic = ? AND quality = 'good' ORDER BY ts",
            [temp],
        ) == [(20.0, False), (20.0, False), (99.0, False)]  # the second birth's 20.0, read before the stale mark:
        # stamped when the host received it (docs/sparkplug-host.md, "A birth after stale marks"), a sample of its own
        assert await retained_value(count) == backlog + 1  # the backlog went as history: the live value stays
    assert gate.violations == []


def _filler_and_mixer() -> ScriptedSource:
    return ScriptedSource(
        name="scripted", tags=[TagSpec("filler", "Count", DataType.Int64), TagSpec("mixer", "Count", DataType.Int64)]
    )


async def _both_read_then_host_away(source: ScriptedSource, edge: EdgeNode, gate: SpbHost) -> int:
    """Both devices read once (buffered until the first births), then the host away; the samples buffered then."""
    source.read("filler", {"Count": 0})
    source.read("mixer", {"Count": 0})
    await host_away(edge, gate)
    return edge.stats.buffered


def _wire(gate: SpbHost) -> list[tuple[str, str | None, list[tuple[object, bool]]]]:
    """What the checker received so far: (kind, device, [(value, is_historical)]) per message."""
    with gate.lock:
        return [(r.kind, r.device, [(v, h) for _n, v, h, _t in r.resolved]) for r in gate.received]


@pytest.mark.parametrize("down", ["during-the-replay", "at-the-births"])
async def test_a_device_down_during_the_replay_sends_its_queued_history_then_its_ddeath_at_once(
    mosquitto: Mosquitto, tmp_path: Path, down: str
) -> None:
    # our edge node and host on Mosquitto, the checker as primary host (a second opinion on the wire): the mixer
    # stops answering while a backlog of both devices is replayed (or before, so its history births it in the
    # replay). A host takes no DATA of a device after its DDEATH, so the mixer's history still queued goes first,
    # then its DDEATH, while the filler's replay goes on
    source = _filler_and_mixer()
    backlog = 5000
    async with contextlib.AsyncExitStack() as stack:
        hub = await stack.enter_async_context(running_host("mosquitto", mosquitto, tmp_path))
        gate, edge = await stack.enter_async_context(edge_of_hub(mosquitto.port, hub, source, tmp_path))
        before = await _both_read_then_host_away(source, edge, gate)
        for i in range(1, backlog + 1):
            source.read("filler", {"Count": i})
            source.read("mixer", {"Count": i})
        await until(lambda: edge.stats.buffered == before + 2 * backlog, what="the backlog buffered")
        if down == "at-the-births":
            source.down("mixer")
            await until(lambda: source.pending == 0, what="the mixer's death taken")
        gate.set_online(True)
        await until(lambda: edge.online, what="births after the host came back")
        if down == "during-the-replay":
            source.down("mixer")
        await until(lambda: (backlog - 1, True) in gate.values("filler", "Count"), what="the replay done")
        wire = _wire(gate)
        born = max(i for i, (kind, _d, _v) in enumerate(wire) if kind == "NBIRTH")
        session = wire[born:]
        died = session.index(("DDEATH", "mixer", []))
        mixer = [v for kind, device, values in session if kind == "DDATA" and device == "mixer" for v in values]
        # its history (the first reading too: buffered until the first births), each once, in order; its last: DBIRTH
        assert mixer == [(i, True) for i in range(backlog)]
        assert all(not (k == "DDATA" and d == "mixer") for k, d, _v in session[died:])  # none after its DDEATH
        assert [k for k, d, _v in session if d == "mixer"].count("DBIRTH") == 1  # never re-born for its history
        filler = [v for k, d, values in session[died:] if k == "DDATA" and d == "filler" for v, h in values if h]
        assert filler, "the DDEATH went out while the replay still ran, ahead of the filler's backlog"
        assert [v for k, d, vs in session if k == "DDATA" and d == "filler" for v, h in vs if h] == list(range(backlog))
        counters = hub.host.core.counters
        await until(lambda: counters.deaths >= 2, what="our host took the mixer's DDEATH")  # the host away, then it
        assert counters.rejected["data_before_birth"] == 0
        assert counters.rejected["seq_gap"] == 0
        assert counters.rebirths_requested == 0
    assert gate.violations == []


async def test_a_rebirth_during_the_replay_births_the_devices_whose_ddeath_is_owed_and_then_buries_them(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # our edge node and host on Mosquitto, the checker as primary host: the mixer (a long backlog) and the filler
    # (none) stop answering during the replay, so each is owed its DDEATH, the filler's after the mixer's history.
    # A rebirth asked meanwhile is a complete birth sequence of what a host holds online: both are born again,
    # then the mixer's history goes on and both get their DDEATH; else the filler never got one and the UNS kept
    # its last value good although the node knew it dead
    source = _filler_and_mixer()
    backlog = 8000
    async with contextlib.AsyncExitStack() as stack:
        hub = await stack.enter_async_context(running_host("mosquitto", mosquitto, tmp_path))
        gate, edge = await stack.enter_async_context(edge_of_hub(mosquitto.port, hub, source, tmp_path))
        before = await _both_read_then_host_away(source, edge, gate)
        for i in range(1, backlog + 1):
            source.read("mixer", {"Count": i})
        await until(lambda: edge.stats.buffered == before + backlog, what="the backlog buffered")
        replayed = edge.stats.replayed
        gate.set_online(True)
        await until(lambda: edge.online, what="births after the host came back")
        source.down("mixer")
        source.down("filler")  # its DDEATH comes after the mixer's history, many steps from now
        # the node's own count (the checker may lag behind what the node sent): 5 of the mixer's 40 steps out
        await until(lambda: edge.stats.replayed >= replayed + 1000, what="the mixer's history under way")
        gate.rebirth(hub.node)
        await until(lambda: gate.of("DDEATH", "filler"), what="the filler's DDEATH")
        wire = _wire(gate)
        births = [i for i, (kind, _d, _v) in enumerate(wire) if kind == "NBIRTH"]
        assert len(births) == 3, "first births, births after the host came back, the rebirth"
        rebirth = wire[births[2] :]
        # the rebirth came while both DDEATHs were owed: both born again, then buried
        assert [(k, d) for k, d, _v in rebirth if k in ("DBIRTH", "DDEATH")] == [
            ("DBIRTH", "filler"),
            ("DBIRTH", "mixer"),
            ("DDEATH", "mixer"),
            ("DDEATH", "filler"),
        ]
        session = wire[births[1] :]
        mixer = [v for kind, device, values in session if kind == "DDATA" and device == "mixer" for v in values]
        assert mixer == [(i, True) for i in range(backlog)]  # its history each once, in order (its last: DBIRTH)
        died = session.index(("DDEATH", "mixer", []))
        assert all(not (k == "DDATA" and d == "mixer") for k, d, _v in session[died:])
        envelope = await retained(hub, f"{hub.cell}/data/Count")
        assert (envelope["value"], envelope["quality"]) == (0, "stale")  # the filler is dead: not shown good
        counters = hub.host.core.counters
        assert counters.rejected["data_before_birth"] == 0
        assert counters.rejected["seq_gap"] == 0
    assert gate.violations == []
