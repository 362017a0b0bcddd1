"""EdgeNode against Mosquitto, checked by an independent Sparkplug host (raw paho + protobuf)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from bridges.source import TagSpec
from bridges.testing import ScriptedSource
from model.envelope import Quality
from tests.bridges.edge.conftest import Proxy, edge_config, edge_of_hub, running_edge
from tests.bridges.edge.spb_host import (
    BOOLEAN,
    FLOAT,
    INT64,
    STRING,
    SpbHost,
    now_ms,
    quality_of,
    string_property,
    until,
)
from tests.fixtures.consumers import retained, running_consumers
from tests.fixtures.hub import running_host
from tests.fixtures.mosquitto import Mosquitto
from uns.sparkplug import DataType
from uns.sparkplug import sparkplug_b_pb2 as pb


async def test_births_carry_every_metric_then_data_by_alias(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    source.read("press", {"Temp": 20.0, "Count": 1, "Setpoint": 1.5, "Mode": "auto"})
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        # the oven is never read: births wait first_reading_wait_s for its first reading, then carry nulls
        await until(lambda: spb_host.count("DBIRTH") == 2, what="births")
        nbirth = spb_host.of("NBIRTH")[0].payload
        assert nbirth.seq == 0
        by_name = {m.name: m for m in nbirth.metrics}
        assert by_name["bdSeq"].datatype == INT64
        assert by_name["bdSeq"].long_value == 0
        assert by_name["Node Control/Rebirth"].datatype == BOOLEAN
        assert by_name["Node Control/Rebirth"].boolean_value is False
        press = {m.name: m for m in spb_host.of("DBIRTH", "press")[0].payload.metrics}
        assert set(press) == {"Temp", "Count", "Setpoint", "Mode"}
        assert press["Mode"].datatype == STRING
        assert press["Setpoint"].datatype == FLOAT
        units = {
            k: v.string_value
            for k, v in zip(press["Temp"].properties.keys, press["Temp"].properties.values, strict=True)
        }
        assert units["engUnit"] == "degC"
        assert quality_of(press["Temp"]) == 192
        assert press["Temp"].double_value == 20.0  # the birth carries the last value (read before it)
        oven = {m.name: m for m in spb_host.of("DBIRTH", "oven")[0].payload.metrics}
        assert oven["Temp"].is_null
        assert quality_of(oven["Temp"]) == 0

        for i in range(300):  # seq wraps past 255; the host checks continuity on every message
            source.read("press", {"Count": i + 2})
        await until(lambda: (2 + 299, False) in spb_host.values("press", "Count"), what="300 DDATA")
        source.read("oven", {"Temp": 180.0}, quality=Quality.uncertain)
        await until(lambda: spb_host.values("oven", "Temp") == [(180.0, False)], what="oven DDATA")
        # Sparkplug 3.0 has no uncertain code: BAD, named (the hub's host reads uncertain)
        uncertain = spb_host.of("DDATA", "oven")[-1].payload.metrics[0]
        assert (quality_of(uncertain), string_property(uncertain, "QualityName")) == (0, "uncertain")
        # the reading taken before the births is in them, not sent again after them
        assert spb_host.values("press", "Count", kinds=("DBIRTH",)) == [(1, False)]
        assert spb_host.values("press", "Count") == [(i, False) for i in range(2, 302)]
        assert node.online
        assert node.stats.sent == 301
    assert spb_host.violations == []
    # a clean stop says NDEATH with the connection's bdSeq
    await until(lambda: spb_host.count("NDEATH") == 1, what="NDEATH on stop")
    assert spb_host.of("NDEATH")[0].resolved[0][1] == 0
    assert source.entered == source.exited == 1


async def test_a_stop_while_waiting_for_the_primary_host_still_says_ndeath(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    # tck-id-operational-behavior-edge-node-intentional-disconnect-ndeath: NDEATH before the DISCONNECT
    # (which discards the will), births out or not
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: node.online, what="births")
        spb_host.set_online(False)
        await until(lambda: spb_host.count("NDEATH") == 1, what="NDEATH when the host goes offline")
        await until(lambda: node.stats.connects == 2, what="reconnected, waiting for the host")
    await until(lambda: spb_host.count("NDEATH") == 2, what="NDEATH of the session that never was born")
    assert [r.resolved[0][1] for r in spb_host.of("NDEATH")] == [0, 1]
    assert spb_host.count("NBIRTH") == 1
    assert spb_host.violations == []


async def test_a_state_older_than_the_last_one_is_ignored(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    # tck-id-operational-behavior-edge-node-termination-host-offline-timestamp: an offline STATE older than
    # the last online one ends nothing; tck-id-message-flow-edge-node-birth-publish-phid-wait-timestamp: an
    # online STATE older than the last STATE does not start the births
    def state(online: bool, ts: int) -> None:
        spb_host.client.publish(spb_host.state_topic, json.dumps({"online": online, "timestamp": ts}), 1, True)

    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: node.online, what="births")
        state(False, 1_000)  # long before the host's online STATE
        source.read("press", {"Count": 1})
        await until(lambda: (1, False) in spb_host.values("press", "Count"), what="data after the old offline STATE")
        assert (node.online, node.stats.connects, spb_host.count("NDEATH")) == (True, 1, 0)
        late = now_ms() + 60_000
        state(False, late)  # newer: the host is offline
        await until(lambda: node.stats.connects == 2 and not node.online, what="reconnected, waiting")
        state(True, late - 1)  # online, but older than the offline STATE
        source.read("press", {"Count": 2})
        await until(lambda: node.stats.buffered >= 1, what="the reading buffered")
        await asyncio.sleep(0.2)  # an edge node that took the older online STATE would be born by now
        assert (node.online, spb_host.count("NBIRTH")) == (False, 1)
        state(True, late)
        await until(
            lambda: node.online and spb_host.count("NBIRTH") >= 2, what="born again once online at least as new"
        )
        assert spb_host.count("NBIRTH") == 2
    assert spb_host.violations == []


class _RefusingFirst(Proxy):
    """A relay whose first connection gets CONNACK 'server unavailable' for its CONNECT."""

    refused = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refused:
            await super()._accept(reader, writer)
            return
        self.refused += 1
        await reader.read(65536)  # the CONNECT
        writer.write(b"\x20\x02\x00\x03")
        await writer.drain()
        writer.close()


async def test_a_refused_connect_used_its_bdseq(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    # tck-id-topics-nbirth-bdseq-increment: bdSeq starts at 0 and goes up by one on every CONNECT packet,
    # the one the broker refused included (a checker at the broker sees both)
    proxy = _RefusingFirst(mosquitto.port)
    async with proxy, running_edge(proxy.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: spb_host.count("NBIRTH") == 1, what="births after the refusal")  # the host's copy too
        assert (proxy.refused, node.online) == (1, True)
        assert [m.long_value for m in spb_host.of("NBIRTH")[0].payload.metrics if m.name == "bdSeq"] == [1]
        assert node.stats.connects == 1
    assert spb_host.violations == []


async def test_killed_socket_gives_will_then_new_bdseq(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    async with Proxy(mosquitto.port) as proxy, running_edge(proxy.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: spb_host.count("NBIRTH") == 1, what="first birth")
        source.read("press", {"Count": 1})
        await until(lambda: spb_host.values("press", "Count") == [(1, False)], what="first DDATA")
        proxy.kill()
        await until(lambda: spb_host.count("NDEATH") == 1, what="the will")
        assert spb_host.of("NDEATH")[0].resolved[0][1] == 0
        await until(lambda: spb_host.count("NBIRTH") == 2, what="birth after reconnect")
        assert [m.long_value for m in spb_host.of("NBIRTH")[1].payload.metrics if m.name == "bdSeq"] == [1]
        source.read("press", {"Count": 2})
        await until(lambda: (2, False) in spb_host.values("press", "Count"), what="DDATA after reconnect")
        assert node.stats.connects == 2
    assert spb_host.violations == []
    # a restart continues the bdSeq from the buffer directory
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path):
        await until(lambda: spb_host.count("NBIRTH") == 3, what="birth after restart")
        assert [m.long_value for m in spb_host.of("NBIRTH")[2].payload.metrics if m.name == "bdSeq"] == [2]


async def test_rebirth_and_commands(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: spb_host.count("DBIRTH") == 2, what="births")
        source.read("press", {"Count": 5})
        await until(lambda: spb_host.count("DDATA") == 1, what="DDATA")
        spb_host.rebirth("n1")
        await until(lambda: spb_host.count("DBIRTH") == 4, what="rebirth")
        nbirths = spb_host.of("NBIRTH")
        assert len(nbirths) == 2
        assert nbirths[1].payload.seq == 0
        assert [m.long_value for m in nbirths[1].payload.metrics if m.name == "bdSeq"] == [0]
        count = {m.name: m for m in spb_host.of("DBIRTH", "press")[-1].payload.metrics}["Count"]
        assert count.long_value == 5

        setpoint = pb.Payload.Metric(name="Setpoint", datatype=FLOAT, float_value=2.5)
        by_alias = pb.Payload.Metric(alias=spb_host.alias("n1", "oven", "On"), boolean_value=True)
        spb_host.dcmd("n1", "press", [setpoint])
        spb_host.dcmd("n1", "press", [pb.Payload.Metric(name="Count", datatype=INT64, long_value=9)])  # not writable
        spb_host.dcmd("n1", "press", [pb.Payload.Metric(name="Nope", datatype=INT64, long_value=9)])  # unknown
        spb_host.dcmd("n1", "oven", [by_alias])  # writable, but the device refuses it
        await until(lambda: node.stats.refused == 2 and node.stats.errors >= 3, what="refusals and the failed write")
        assert source.writes == [("press", "Setpoint", 2.5)]
        assert node.stats.writes == 1
    assert spb_host.violations == []


async def test_report_by_exception_deadband_and_heartbeat(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    config = edge_config(group, heartbeat_s=0.6)
    async with running_edge(mosquitto.port, config, source, tmp_path):
        await until(lambda: spb_host.count("DBIRTH") == 2, what="births")
        for temp in (20.0, 20.3, 20.4, 21.0, 21.0):  # deadband 0.5 on press/Temp
            source.read("press", {"Temp": temp, "Mode": "auto"})
        source.read("press", {"Mode": "manual"})
        await until(lambda: ("manual", False) in spb_host.values("press", "Mode"), what="mode change")
        assert [v for v, _ in spb_host.values("press", "Temp")] == [20.0, 21.0]
        assert [v for v, _ in spb_host.values("press", "Mode")] == ["auto", "manual"]
        # unchanged values come again once the heartbeat is due, without a new reading
        await until(lambda: len(spb_host.values("press", "Temp")) >= 3, within_s=3, what="heartbeat")
        assert spb_host.values("press", "Temp")[2] == (21.0, False)
    assert spb_host.violations == []


async def test_a_device_back_with_unchanged_values_is_reborn(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    # report by exception sends nothing for equal values, but the DBIRTH must not wait for a change
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path):
        source.read("oven", {"Temp": 100.0})
        await until(lambda: spb_host.count("DBIRTH") == 2, what="births")
        await until(lambda: spb_host.values("oven", "Temp", kinds=("DBIRTH", "DDATA")) != [], what="oven value")
        source.down("oven", "timeout after 1 s")
        await until(lambda: spb_host.count("DDEATH") == 1, what="oven dead")
        source.read("oven", {"Temp": 100.0})
        await until(lambda: spb_host.count("DBIRTH") == 3, what="oven reborn with the value it died with")
        assert spb_host.values("oven", "Temp", kinds=("DBIRTH",))[-1] == (100.0, False)
    assert spb_host.violations == []


async def test_device_down_ddeath_once_then_rebirth_on_data(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: spb_host.count("DBIRTH") == 2, what="births")
        source.down("oven", "timeout after 1 s")
        source.down("oven", "timeout after 1 s")
        source.read("press", {"Count": 1})
        await until(lambda: spb_host.count("DDATA") == 1, what="press data after the down oven")
        assert spb_host.count("DDEATH") == 1
        # the node's own health says so (NDATA by alias, refreshed every health interval)
        await until(lambda: (True, False) in spb_host.values(None, "Bridge/Degraded", kinds=("NDATA",)), what="health")
        source.read("oven", {"Temp": 100.0})
        await until(lambda: spb_host.count("DBIRTH") == 3, what="oven reborn")
        await until(lambda: spb_host.values("oven", "Temp") == [(100.0, False)], what="oven data")
        assert node.stats.samples == 2
    assert spb_host.violations == []


async def test_a_heartbeat_does_not_make_a_reading_still_queued_out_of_order_on_the_host(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # a reading taken before a heartbeat but handed to the node after it (queued in the source, or a poll round
    # in flight): the heartbeat repeats the value held as of when it was read, so the reading, newer, stays
    # the host's live value (retained), not a sample older than the heartbeat
    source = ScriptedSource(name="scripted", tags=[TagSpec("filler", "Temp", DataType.Double)])
    async with contextlib.AsyncExitStack() as stack:
        hub = await stack.enter_async_context(running_host("mosquitto", mosquitto, tmp_path))
        gate, _edge = await stack.enter_async_context(
            edge_of_hub(mosquitto.port, hub, source, tmp_path, heartbeat_s=0.3, health_interval_s=0.1)
        )
        source.read("filler", {"Temp": 20.0})
        await until(lambda: gate.count("DBIRTH") == 1, what="births")
        read_at = now_ms()  # taken now, queued until a heartbeat went out
        await until(lambda: (20.0, False) in gate.values("filler", "Temp"), what="a heartbeat of Temp")
        source.read("filler", {"Temp": 21.0}, timestamp_ms=read_at)
        await until(lambda: (21.0, False) in gate.values("filler", "Temp"), what="the queued reading")
        envelope = await retained(hub, f"{hub.cell}/data/Temp")
        assert (envelope["value"], envelope["timestamp_ms"]) == (21.0, read_at)
        assert hub.host.core.counters.out_of_order == 0
    assert gate.violations == []


async def test_a_reading_from_the_outage_arriving_just_after_the_dbirth_is_the_current_value(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # an OPC UA server back after an outage: its first notification re-births the device with a value unchanged
    # for an hour (its SourceTimestamp old, so the host stamps the birth after the stale mark); the next one
    # brings a value that changed during the outage, stamped then, i.e. before that DBIRTH was sent. It is
    # newer than what the birth carried: the UNS and the historian must hold it, not the birth's older value
    source = ScriptedSource(
        name="scripted", tags=[TagSpec("filler", "Temp", DataType.Double), TagSpec("filler", "Speed", DataType.Double)]
    )
    async with contextlib.AsyncExitStack() as stack:
        hub = await stack.enter_async_context(running_host("mosquitto", mosquitto, tmp_path))
        seen = await stack.enter_async_context(running_consumers(hub, tmp_path / "history", derive=[]))
        gate, _edge = await stack.enter_async_context(edge_of_hub(mosquitto.port, hub, source, tmp_path))
        changed_at = now_ms() - 3_600_000
        source.read("filler", {"Temp": 20.0, "Speed": 1.0}, timestamp_ms=changed_at)
        await until(lambda: gate.count("DBIRTH") == 1, what="births")
        speed = f"{hub.cell}/data/Speed"
        source.down("filler")
        await until(lambda: seen.latest(speed) and seen.latest(speed)[0][1] == "stale", what="the stale mark")
        in_outage = now_ms()  # the server's value changed while the hub saw the device dead
        await asyncio.sleep(0.05)
        source.read("filler", {"Temp": 20.0}, timestamp_ms=changed_at)  # back: the first notification
        await until(lambda: gate.count("DBIRTH") == 2, what="the device born again")
        source.read("filler", {"Speed": 2.0}, timestamp_ms=in_outage)  # the next one: read before that DBIRTH
        await until(
            lambda: seen.latest(speed)[0][:2] == (2.0, "good"), what=f"the outage's reading: {seen.latest(speed)}"
        )
        envelope = await retained(hub, speed)
        assert (envelope["value"], envelope["quality"]) == (2.0, "good")
        assert hub.host.core.counters.out_of_order == 0
    assert gate.violations == []


async def test_a_device_back_with_its_unchanged_value_is_current_again_at_its_dbirth(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # an OPC UA value unchanged for an hour keeps its SourceTimestamp. The device dies: the host marks the value
    # stale, stamped when it learnt of the death. The device answers again with the same value and timestamp: its
    # DBIRTH carries it as read, older than the stale mark, so the host stamps it at the birth (the DBIRTH's own
    # time, docs/sparkplug-host.md, "A birth after stale marks"): current again at once, in the historian's latest
    # and the retained value; the heartbeats, stamped no earlier than that DBIRTH, meet it at the same millisecond
    source = ScriptedSource(name="scripted", tags=[TagSpec("filler", "Temp", DataType.Double)])
    async with contextlib.AsyncExitStack() as stack:
        hub = await stack.enter_async_context(running_host("mosquitto", mosquitto, tmp_path))
        seen = await stack.enter_async_context(running_consumers(hub, tmp_path / "history", derive=[]))
        gate, _edge = await stack.enter_async_context(
            edge_of_hub(mosquitto.port, hub, source, tmp_path, heartbeat_s=0.3, health_interval_s=0.1)
        )
        changed_at = now_ms() - 3_600_000
        source.read("filler", {"Temp": 20.0}, timestamp_ms=changed_at)
        await until(lambda: gate.count("DBIRTH") == 1, what="births")
        topic = f"{hub.cell}/data/Temp"

        def latest() -> list[tuple[object, ...]]:
            return seen.latest(topic)

        source.down("filler")
        await until(lambda: latest() and latest()[0][1] == "stale", what=f"the stale mark stored: {latest()}")
        marked_at = int(str(latest()[0][2]))
        source.read("filler", {"Temp": 20.0}, timestamp_ms=changed_at)  # back, the value unchanged
        await until(lambda: gate.count("DBIRTH") == 2, what="the device born again")
        await until(lambda: latest()[0][1] == "good", what=f"the value current again: {latest()}")
        value, _quality, stamped = latest()[0]
        assert value == 20.0
        birth_ms = gate.of("DBIRTH", "filler")[-1].payload.timestamp
        assert int(str(stamped)) == max(birth_ms, marked_at + 1)  # at the birth, after the mark
        beats = gate.count("DDATA")
        await until(lambda: gate.count("DDATA") >= beats + 2, what="two heartbeats after the birth")
        envelope = await retained(hub, topic)
        assert (envelope["value"], envelope["quality"], envelope["timestamp_ms"]) == (20.0, "good", stamped)
        assert hub.host.core.counters.out_of_order == 0  # a heartbeat is not an older value
    assert gate.violations == []
