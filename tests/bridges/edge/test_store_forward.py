"""Store-and-forward: host offline, broker restarts, the bounded buffer, and buffered data across restarts."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from bridges.edge.buffer import BufferedBatch, DiskBuffer
from bridges.testing import ScriptedSource
from tests.bridges.edge.conftest import edge_config, running_edge
from tests.bridges.edge.spb_host import SpbHost, now_ms, quality_of, string_property, until
from tests.fixtures.mosquitto import Mosquitto, free_port, run_mosquitto
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
    host = SpbHost(mosquitto.port, group, f"host-{group}")
    await host.start(online=False)
    try:
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
            got = host.values("press", "Count")
            assert got == [(i, True) for i in range(stats.dropped, 299)]  # the newest survive, in order
            assert host.values("press", "Count", kinds=("DBIRTH",)) == [(299, False)]  # the births carry the last
            assert node.stats.replayed + node.stats.dropped == 299
            assert node.stats.errors >= node.stats.dropped
        assert host.violations == []
    finally:
        host.stop()


async def test_buffer_survives_a_restart_of_the_node(
    mosquitto: Mosquitto, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    host = SpbHost(mosquitto.port, group, f"host-{group}")
    await host.start(online=False)
    try:
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
    finally:
        host.stop()


async def test_a_buffer_written_with_the_opc_uncertain_code_replays_sparkplug_codes(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    # records as edge nodes buffered them before 7388ebf: uncertain as the OPC code 64, good at 192, bad at 0
    def old(value: int, code: int) -> Metric:
        quality = PropertySet({"Quality": PropertyValue(type=DataType.Int32, value=code)})
        return Metric(
            name="Count", timestamp=now_ms() - 1000 + value, datatype=DataType.Int64, value=value, properties=quality
        )

    with DiskBuffer(directory=tmp_path / "bridges" / "n1", max_bytes=1 << 20, name="n1") as buffer:
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
