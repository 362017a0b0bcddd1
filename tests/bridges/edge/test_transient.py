"""``edge.transient_tags``: the tags it names go out ``is_transient`` in DBIRTH and every DDATA, and the hub keeps
them live on the UNS but out of its history (our own edge engine, the real host and historian)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from bridges.edge.session import EdgeSession
from bridges.source import Sample, Samples, TagSpec
from bridges.testing import ScriptedSource
from model.bridges.common import EdgeNodeConfig
from tests.bridges.edge.conftest import edge_config, host_away, running_edge
from tests.bridges.edge.spb_host import SpbHost
from tests.fixtures.consumers import running_consumers
from tests.fixtures.hub import running_host
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.reading import rows
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import Watcher
from uns.clock import now_ms
from uns.mqtt.types import BrokerUrl, Message
from uns.sparkplug import DataType, Metric
from uns.sparkplug import sparkplug_b_pb2 as pb

TAGS = [
    TagSpec("filler", "Temp", DataType.Double, unit="degC"),
    TagSpec("filler", "Diagnostics/Vibration", DataType.Double),
    TagSpec("filler", "Diagnostics/Current", DataType.Float),
    TagSpec("capper", "Diagnostics/Vibration", DataType.Double),
]


def _raw(message: Message) -> pb.Payload:
    p = pb.Payload()
    p.ParseFromString(message.payload)
    return p


def _flags(message: Message) -> dict[str, bool]:
    """Each metric's is_transient, by name (a birth) or by the alias's tag name (DATA)."""
    return {m.name or str(m.alias): m.is_transient for m in _raw(message).metrics}


def test_the_patterns_mark_their_tags_in_births_and_every_data() -> None:
    session = EdgeSession(
        group="g", node_id="n", tags=TAGS, heartbeat_ms=1000, transient=["filler/Diagnostics/*", "press/*"]
    )
    assert session.transient_unmatched == ["press/*"]
    births = session.births(bd_seq=0, now_ms=1000, health={})
    by_topic = {m.topic: m for m in births}
    assert _flags(by_topic["spBv1.0/g/DBIRTH/n/filler"]) == {
        "Temp": False,
        "Diagnostics/Vibration": True,
        "Diagnostics/Current": True,
    }
    assert _flags(by_topic["spBv1.0/g/DBIRTH/n/capper"]) == {"Diagnostics/Vibration": False}  # another device
    aliases = {m.name: m.alias for m in _raw(by_topic["spBv1.0/g/DBIRTH/n/filler"]).metrics}
    sample = Samples("filler", [Sample("Temp", 20.5, 1001), Sample("Diagnostics/Vibration", 0.7, 1001)])
    (ddata,) = session.data("filler", session.accept(sample, now_ms=1002).metrics, now_ms=1002)
    assert _flags(ddata) == {str(aliases["Temp"]): False, str(aliases["Diagnostics/Vibration"]): True}
    (beat,) = session.heartbeat(now_ms=2500)  # a heartbeat's DATA too
    assert _flags(beat)[str(aliases["Diagnostics/Vibration"])] is True
    buffered = [Metric(name="Diagnostics/Vibration", timestamp=900, datatype=DataType.Double, value=0.4)]
    (backfill,) = session.data("filler", buffered, now_ms=2600, historical=True)
    assert all(m.is_transient and m.is_historical for m in _raw(backfill).metrics)  # store-and-forward keeps it


def test_only_lasting_values_are_kept_for_later() -> None:
    session = EdgeSession(group="g", node_id="n", tags=TAGS, heartbeat_ms=0, transient=["filler/Diagnostics/*"])
    metrics = [
        Metric(name="Temp", timestamp=1, datatype=DataType.Double, value=20.0),
        Metric(name="Diagnostics/Vibration", timestamp=1, datatype=DataType.Double, value=0.5),
    ]
    assert [m.name for m in session.lasting("filler", metrics)] == ["Temp"]
    assert [m.name for m in session.lasting("capper", metrics)] == ["Temp", "Diagnostics/Vibration"]  # not its tags


def test_brackets_in_a_pattern_are_the_tag_names_own() -> None:
    # S7 DB sources and EtherNet/IP name array elements Flags[3], Stages[1,2]: only * and ? are wildcards
    tags = [
        TagSpec("plc", "Flags[3]", DataType.Boolean),
        TagSpec("plc", "Flags3", DataType.Boolean),
        TagSpec("plc", "Stages[1,2]", DataType.Int16),
        TagSpec("plc", "Stages1", DataType.Int16),
    ]
    session = EdgeSession(
        group="g", node_id="n", tags=tags, heartbeat_ms=0, transient=["plc/Flags[3]", "plc/Stages[*]"]
    )
    (birth,) = [m for m in session.births(bd_seq=0, now_ms=1000, health={}) if m.topic.endswith("/plc")]
    assert _flags(birth) == {"Flags[3]": True, "Flags3": False, "Stages[1,2]": True, "Stages1": False}
    assert session.transient_unmatched == []


async def test_store_and_forward_keeps_no_transient_values(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    config = edge_config(group, transient_tags=["press/Temp"])
    async with running_edge(mosquitto.port, config, source, tmp_path) as node:
        await host_away(node, spb_host)
        for i in range(10):
            source.read("press", {"Count": 100 + i, "Temp": 50.0 + i})
        await until(lambda: node.stats.buffered == 10, what="the 10 counts buffered")
        spb_host.set_online(True)
        await until(lambda: node.stats.buffer_depth == 0 and node.online, what="replay")
        source.read("press", {"Count": 110, "Temp": 70.0})
        await until(lambda: (110, False) in spb_host.values("press", "Count"), what="live data after the replay")
        # the counts come back as history; the transient Temp does not, but its last value is in the birth
        assert spb_host.values("press", "Count") == [(100 + i, True) for i in range(9)] + [(110, False)]
        assert spb_host.values("press", "Temp") == [(70.0, False)]
        (reborn,) = [m for m in spb_host.of("DBIRTH", "press")[-1].payload.metrics if m.name == "Temp"]
        assert (reborn.double_value, reborn.is_transient) == (59.0, True)
        assert node.stats.buffered == 10
    assert spb_host.violations == []


def test_no_pattern_marks_nothing() -> None:
    session = EdgeSession(group="g", node_id="n", tags=TAGS, heartbeat_ms=0)
    births = session.births(bd_seq=0, now_ms=1000, health={})
    assert not any(m.is_transient for message in births for m in _raw(message).metrics)
    assert session.transient_unmatched == []


@pytest.mark.parametrize("pattern", ["Temp", "/Temp", "filler/", ""])
def test_a_pattern_without_a_device_and_a_metric_is_refused_naming_the_field(pattern: str) -> None:
    with pytest.raises(ValidationError) as info:
        EdgeNodeConfig.model_validate({"group": "g", "transient_tags": [pattern]})
    (error,) = info.value.errors()
    assert error["loc"] == ("transient_tags", 0)
    assert "must be <device>/<metric>" in error["msg"]


async def test_a_tag_configured_transient_is_live_on_the_uns_and_not_in_the_historian(tmp_path: Path) -> None:
    source = ScriptedSource(name="scripted", tags=TAGS[:3])
    async with contextlib.AsyncExitStack() as stack:
        hub = await stack.enter_async_context(running_host("embedded", None, tmp_path))
        assert hub.broker is not None
        seen = await stack.enter_async_context(running_consumers(hub, tmp_path / "history", derive=[]))
        historian = seen.historian
        watcher = Watcher(hub.url, [f"{hub.cell}/data/#"])
        await watcher.start()
        stack.callback(watcher.stop)
        config = edge_config(
            hub.group, primary_host_id=None, health_interval_s=5.0, transient_tags=["filler/Diagnostics/*"]
        )
        port = BrokerUrl.from_str(hub.url).port
        edge = await stack.enter_async_context(running_edge(port, config, source, tmp_path / "edge", hub.node))
        ts = now_ms()
        source.read("filler", {"Diagnostics/Vibration": 0.5, "Diagnostics/Current": 1.5, "Temp": 20.0}, timestamp_ms=ts)
        await until(lambda: edge.online, what="births out")  # the first reading in the DBIRTH, the next as DDATA
        source.read("filler", {"Diagnostics/Vibration": 0.75, "Temp": 25.0}, timestamp_ms=ts + 10)
        temp, vibration = f"{hub.cell}/data/Temp", f"{hub.cell}/data/Diagnostics/Vibration"

        def stored(topic: str) -> list[object]:
            return [value for value, _, _ in seen.samples(topic)]

        await until(lambda: stored(temp) == [20.0, 25.0], what="both Temp samples stored")
        await until(lambda: (watcher.json(vibration) or {}).get("value") == 0.75, what="Vibration's DATA on the UNS")
        live = watcher.json(vibration)
        assert live is not None
        assert (live["value"], live["transient"], live["source"]) == (0.75, True, f"{hub.group}/{hub.node}/filler")
        assert (watcher.json(f"{hub.cell}/data/Diagnostics/Current") or {}).get("transient") is True
        assert "transient" not in (watcher.json(temp) or {})
        assert stored(vibration) == stored(f"{hub.cell}/data/Diagnostics/Current") == []
        assert rows(historian, "SELECT count(*) FROM series WHERE topic LIKE '%/Diagnostics/%'") == [(0,)]
        # the birth's Vibration and Current, then the DATA's Vibration: each left out on purpose, and counted
        await until(lambda: historian.health()["transient_skipped"] == 3, what=f"counted: {historian.health()}")
