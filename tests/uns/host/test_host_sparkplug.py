"""The host against a third-party edge node (raw paho + generated protobuf), on both brokers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from tests.fixtures.hub import RunningHub, running_host
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import (
    BOOLEAN,
    DOUBLE,
    INT32,
    INT64,
    STRING,
    RawEdgeNode,
    Watcher,
    edge_and_watcher,
    metric,
    now_ms,
    payload,
    read_at,
)
from uns.sparkplug import sparkplug_b_pb2 as pb

TEMPLATE = 19
DATASET = 16


def _started(hub: RunningHub, bd_seq: int = 0) -> AbstractAsyncContextManager[tuple[RawEdgeNode, Watcher]]:
    return edge_and_watcher(hub.url, hub.group, hub.node, [f"{hub.enterprise}/#"], bd_seq=bd_seq)


def _birth(edge: RawEdgeNode) -> None:
    edge.nbirth([metric("Uptime", 12, INT64), metric("Production/GoodCount", 7, INT32, alias=9)])
    edge.send(
        "DBIRTH",
        [
            metric("Temp", 72.5, DOUBLE, alias=1),
            metric("Speed", -5, INT32, alias=2),
            metric("Running", True, BOOLEAN, alias=3),
        ],
        device="filler",
    )


async def test_births_and_alias_data_are_republished_as_envelopes(hub: RunningHub) -> None:
    async with _started(hub) as (edge, watcher):
        _birth(edge)
        temp = f"{hub.cell}/data/Temp"
        await until(lambda: watcher.json(temp) is not None, what=temp)
        assert watcher.json(temp) == {
            "value": 72.5,
            "timestamp_ms": watcher.json(temp)["timestamp_ms"],  # type: ignore[index]
            "quality": "good",
            "datatype": "Double",
            "unit": "degC",
            "source": f"{edge.group}/{edge.node}/filler",
        }
        assert watcher.json(f"{hub.line}/data/Production/GoodCount")["source"] == f"{edge.group}/{edge.node}"  # type: ignore[index]
        assert watcher.json(f"{hub.line}/data/Production/GoodCount")["value"] == 7  # type: ignore[index]
        assert watcher.json(f"{hub.line}/data/Uptime")["datatype"] == "Int64"  # type: ignore[index]
        # DATA by alias only, with no names and no datatypes, as Sparkplug recommends
        edge.send(
            "DDATA",
            [
                metric(None, 80.25, DOUBLE, alias=1, with_datatype=False),
                metric(None, -32768, INT32, alias=2, with_datatype=False),
            ],
            device="filler",
        )
        await until(lambda: watcher.json(temp)["value"] == 80.25, what="DDATA value")  # type: ignore[index]
        # each metric is its own UNS message: Speed may arrive just after Temp
        await until(lambda: watcher.json(f"{hub.cell}/data/Speed")["value"] != -5, what="DDATA Speed")  # type: ignore[index]
        speed = watcher.json(f"{hub.cell}/data/Speed")
        assert speed is not None
        assert speed["value"] == -32768
        assert speed["datatype"] == "Int32"
        assert watcher.json(f"{hub.cell}/data/Running")["value"] is True  # type: ignore[index]
        assert edge.rebirth_requests() == 0


async def test_seq_gap_requests_rebirth_and_keeps_the_data(hub: RunningHub) -> None:
    async with _started(hub) as (edge, watcher):
        _birth(edge)
        temp = f"{hub.cell}/data/Temp"
        await until(lambda: watcher.json(temp) is not None)
        edge.send(
            "DDATA", [metric(None, 99.0, DOUBLE, alias=1, with_datatype=False)], device="filler", seq=edge.seq + 5
        )
        await until(lambda: edge.rebirth_requests() == 1, what="rebirth after seq gap")
        await until(lambda: watcher.json(temp)["value"] == 99.0)  # type: ignore[index]
        assert hub.host.core.counters.rejected["seq_gap"] == 1


async def test_unknown_alias_requests_rebirth_and_keeps_good_metrics(hub: RunningHub) -> None:
    async with _started(hub) as (edge, watcher):
        _birth(edge)
        temp = f"{hub.cell}/data/Temp"
        await until(lambda: watcher.json(temp) is not None)
        edge.send(
            "DDATA",
            [
                metric(None, 1.0, DOUBLE, alias=77, with_datatype=False),
                metric(None, 55.5, DOUBLE, alias=1, with_datatype=False),
            ],
            device="filler",
        )
        await until(lambda: edge.rebirth_requests() == 1, what="rebirth after unknown alias")
        await until(lambda: watcher.json(temp)["value"] == 55.5)  # type: ignore[index]
        assert hub.host.core.counters.rejected["unknown_alias"] == 1


async def test_data_before_birth_requests_rebirth(hub: RunningHub) -> None:
    async with _started(hub) as (edge, watcher):
        edge.send("NDATA", [metric("Uptime", 1, INT64)], seq=3)
        await until(lambda: edge.rebirth_requests() == 1, what="rebirth after DATA before BIRTH")
        assert hub.host.core.counters.rejected["data_before_birth"] == 1
        # the rebirth it asked for then lands normally
        _birth(edge)
        await until(lambda: watcher.json(f"{hub.cell}/data/Temp") is not None)


async def test_ndeath_marks_node_and_device_values_stale(hub: RunningHub) -> None:
    async with _started(hub, bd_seq=3) as (edge, watcher):
        _birth(edge)
        temp = f"{hub.cell}/data/Temp"
        await until(lambda: watcher.json(temp) is not None)
        edge.publish("NDEATH", payload([metric("bdSeq", 3, INT64)], None))
        await until(lambda: watcher.json(temp)["quality"] == "stale", what="stale Temp")  # type: ignore[index]
        assert watcher.json(temp)["value"] == 72.5  # type: ignore[index]
        # the node's values, then its status: each its own message, so wait for the last
        nodes = f"{hub.enterprise}/hub/host/nodes/{hub.group}/{hub.node}"
        await until(lambda: watcher.json(nodes)["online"] is False, what="node status offline")  # type: ignore[index]
        await until(lambda: watcher.json(f"{hub.line}/data/Uptime")["quality"] == "stale", what="stale Uptime")  # type: ignore[index]
        status = watcher.json(nodes)
        assert status is not None
        assert status["online"] is False
        assert status["bdSeq"] == 3


async def test_ndeath_of_an_older_session_is_ignored_and_asks_for_rebirth(hub: RunningHub) -> None:
    async with _started(hub, bd_seq=4) as (edge, watcher):
        _birth(edge)
        temp = f"{hub.cell}/data/Temp"
        await until(lambda: watcher.json(temp) is not None)
        edge.publish("NDEATH", payload([metric("bdSeq", 3, INT64)], None))
        await until(lambda: edge.rebirth_requests() == 1, what="rebirth after bdSeq mismatch")
        assert watcher.json(temp)["quality"] == "good"  # type: ignore[index]
        assert hub.host.core.counters.rejected["bdseq_mismatch"] == 1


async def test_ndeath_of_a_node_already_offline_asks_for_nothing(hub: RunningHub) -> None:
    # an edge node's NDEATH for a connection that never sent its NBIRTH (stopped while waiting for its
    # primary host): no session is alive to prove anything, so no rebirth request and no mismatch
    async with _started(hub, bd_seq=3) as (edge, watcher):
        _birth(edge)
        temp = f"{hub.cell}/data/Temp"
        await until(lambda: watcher.json(temp) is not None)
        edge.publish("NDEATH", payload([metric("bdSeq", 3, INT64)], None))
        await until(lambda: watcher.json(temp)["quality"] == "stale", what="stale Temp")  # type: ignore[index]
        edge.publish("NDEATH", payload([metric("bdSeq", 4, INT64)], None))
        edge.publish("NDEATH", payload([metric("bdSeq", 3, INT64)], None))  # the will repeating the first
        edge.bd_seq = 5
        _birth(edge)  # handled after both deaths: the host has seen them once it is republished
        await until(lambda: watcher.json(temp)["quality"] == "good", what="born again")  # type: ignore[index]
        await asyncio.sleep(0.1)  # a rebirth request would have reached the edge node by now
        assert edge.rebirth_requests() == 0
        assert hub.host.core.counters.rejected["bdseq_mismatch"] == 0


def _with_quality(m: pb.Payload.Metric, code: int, name: str | None = None) -> pb.Payload.Metric:
    m.properties.keys.append("Quality")
    m.properties.values.add(type=INT32, int_value=code)
    if name is not None:
        m.properties.keys.append("QualityName")
        m.properties.values.add(type=STRING, string_value=name)
    return m


async def test_sparkplug_quality_codes_are_read_stale_good_bad_and_named_uncertain(hub: RunningHub) -> None:
    # Sparkplug 3.0's three codes (tck-id-payloads-propertyset-quality-value-value): 0 BAD, 192 GOOD, 500 STALE;
    # the hub's edge nodes send uncertain as BAD named by QualityName
    async with _started(hub) as (edge, watcher):
        _birth(edge)
        temp, speed, running = (f"{hub.cell}/data/{n}" for n in ("Temp", "Speed", "Running"))
        await until(lambda: watcher.json(running) is not None)
        edge.send(
            "DDATA",
            [
                _with_quality(metric(None, 70.0, DOUBLE, alias=1, with_datatype=False), 500),
                _with_quality(metric(None, 3, INT32, alias=2, with_datatype=False), 0, "uncertain"),
                _with_quality(metric(None, False, BOOLEAN, alias=3, with_datatype=False), 0),
            ],
            device="filler",
        )
        await until(lambda: (watcher.json(running) or {}).get("value") is False, what="the DDATA republished")
        assert (watcher.json(temp) or {}).get("quality") == "stale"
        assert (watcher.json(speed) or {}).get("quality") == "uncertain"
        assert (watcher.json(running) or {}).get("quality") == "bad"


def _template(members: dict[str, float], *, definition: bool) -> pb.Payload.Template:
    t = pb.Payload.Template(is_definition=definition)
    if not definition:
        t.template_ref = "Motor"
    for name, value in members.items():
        t.metrics.add(name=name, datatype=DOUBLE, double_value=value, timestamp=1)
    return t


def _born(name: str, alias: int, template: pb.Payload.Template) -> pb.Payload.Metric:
    """A Template instance as its birth carries it: named, with its alias and datatype."""
    m = pb.Payload.Metric(name=name, alias=alias, datatype=TEMPLATE, timestamp=1)
    m.template_value.CopyFrom(template)
    return m


def _data(alias: int, template: pb.Payload.Template) -> pb.Payload.Metric:
    """A Template instance as a DATA carries it: by alias alone, stamped now."""
    m = pb.Payload.Metric(alias=alias, timestamp=now_ms())
    m.template_value.CopyFrom(template)
    return m


def _member(watcher: Watcher, topic: str, name: str) -> object:
    """A member of the Template instance republished on ``topic``."""
    return ((watcher.json(topic) or {}).get("value") or {})["metrics"][name]  # type: ignore[index]


async def test_a_template_definition_is_no_value_and_an_instance_s_data_keeps_its_other_members(
    hub: RunningHub,
) -> None:
    # Sparkplug 3.0: definitions go in NBIRTH (tck-id-payloads-template-definition-nbirth-only) and describe
    # instances; an instance in DATA may carry a subset of its members (-template-instance-members-data)
    async with _started(hub) as (edge, watcher):
        definition = pb.Payload.Metric(name="Motor", datatype=TEMPLATE, timestamp=1)
        definition.template_value.CopyFrom(_template({"Speed": 0.0, "Temp": 0.0}, definition=True))
        edge.nbirth([metric("Uptime", 12, INT64), definition])
        edge.send(
            "DBIRTH", [_born("M1", 7, _template({"Speed": 5.0, "Temp": 20.0}, definition=False))], device="filler"
        )
        m1 = f"{hub.cell}/data/M1"
        await until(lambda: watcher.json(m1) is not None, what="the instance republished")
        edge.send("DDATA", [_data(7, _template({"Temp": 21.0}, definition=False))], device="filler")
        await until(lambda: (watcher.json(m1) or {}).get("value", {})["metrics"]["Temp"] == 21.0, what="Temp 21.0")  # type: ignore[index]
        assert watcher.json(m1)["value"] == {"metrics": {"Speed": 5.0, "Temp": 21.0}, "template_ref": "Motor"}  # type: ignore[index]
        assert watcher.json(f"{hub.line}/data/Uptime") is not None
        assert watcher.json(f"{hub.line}/data/Motor") is None  # the definition is not a value
        assert hub.host.core.counters.rejected == {}


async def test_a_nested_template_instance_s_data_keeps_its_other_members_too(hub: RunningHub) -> None:
    # a member that is itself a Template instance is an instance in DATA too: it may carry a subset of its members
    # (tck-id-payloads-template-instance-members-data), so it is merged over the nested instance held
    def line(speed: float | None, temp: float | None, uptime: int | None) -> pb.Payload.Template:
        drive = _template({k: v for k, v in (("Speed", speed), ("Temp", temp)) if v is not None}, definition=False)
        outer = pb.Payload.Template(template_ref="Line")
        outer.metrics.add(name="Drive", datatype=TEMPLATE, timestamp=1).template_value.CopyFrom(drive)
        if uptime is not None:
            outer.metrics.add(name="Uptime", datatype=INT64, long_value=uptime, timestamp=1)
        return outer

    async with _started(hub) as (edge, watcher):
        edge.nbirth([metric("Uptime", 12, INT64)])
        edge.send("DBIRTH", [_born("L1", 8, line(5.0, 20.0, 3))], device="filler")
        l1 = f"{hub.cell}/data/L1"
        await until(lambda: watcher.json(l1) is not None, what="the instance republished")
        edge.send("DDATA", [_data(8, line(None, 21.0, None))], device="filler")
        await until(lambda: _member(watcher, l1, "Drive")["metrics"]["Temp"] == 21.0, what="Temp 21.0")  # type: ignore[index]
        assert watcher.json(l1)["value"] == {  # type: ignore[index]
            "metrics": {"Drive": {"metrics": {"Speed": 5.0, "Temp": 21.0}, "template_ref": "Motor"}, "Uptime": 3},
            "template_ref": "Line",
        }
        assert hub.host.core.counters.rejected == {}


async def test_a_template_member_whose_datatype_changes_to_an_instance_is_that_instance_alone(hub: RunningHub) -> None:
    # a member born a DataSet and sent in DATA as a Template instance: nothing of the DataSet held is an
    # instance's member, so the instance replaces it (a merge kept the DataSet's columns, types and rows in it);
    # and back to a DataSet, the DataSet replaces the instance
    def line(drive: pb.Payload.Metric) -> pb.Payload.Template:
        outer = pb.Payload.Template(template_ref="Line")
        outer.metrics.add().CopyFrom(drive)
        return outer

    def dataset(speed: float) -> pb.Payload.Metric:
        member = pb.Payload.Metric(name="Drive", datatype=DATASET, timestamp=1)
        member.dataset_value.num_of_columns = 1
        member.dataset_value.columns.append("Speed")
        member.dataset_value.types.append(DOUBLE)
        member.dataset_value.rows.add().elements.add(double_value=speed)
        return member

    async with _started(hub) as (edge, watcher):
        edge.nbirth([metric("Uptime", 12, INT64)])
        edge.send("DBIRTH", [_born("L1", 8, line(dataset(5.0)))], device="filler")
        l1 = f"{hub.cell}/data/L1"
        await until(lambda: watcher.json(l1) is not None, what="the instance republished")
        drive = pb.Payload.Metric(name="Drive", datatype=TEMPLATE, timestamp=1)
        drive.template_value.CopyFrom(_template({"Temp": 21.0}, definition=False))
        edge.send("DDATA", [_data(8, line(drive))], device="filler")

        def held() -> object:
            return _member(watcher, l1, "Drive")

        await until(lambda: "metrics" in held(), what="the Drive instance")  # type: ignore[operator]
        assert held() == {"metrics": {"Temp": 21.0}, "template_ref": "Motor"}
        edge.send("DDATA", [_data(8, line(dataset(6.0)))], device="filler")
        await until(lambda: "rows" in held(), what="the Drive DataSet")  # type: ignore[operator]
        assert held() == {"columns": ["Speed"], "types": ["Double"], "rows": [[6.0]]}
        assert hub.host.core.counters.rejected == {}


async def test_ddeath_marks_only_that_device_stale(hub: RunningHub) -> None:
    async with _started(hub) as (edge, watcher):
        _birth(edge)
        temp = f"{hub.cell}/data/Temp"
        await until(lambda: watcher.json(temp) is not None)
        edge.send("DDEATH", [], device="filler")
        await until(lambda: watcher.json(temp)["quality"] == "stale")  # type: ignore[index]
        assert watcher.json(f"{hub.line}/data/Uptime")["quality"] == "good"  # type: ignore[index]


async def test_lost_connection_fires_the_will_and_values_go_stale(hub: RunningHub) -> None:
    async with _started(hub, bd_seq=0) as (edge, watcher):
        _birth(edge)
        temp = f"{hub.cell}/data/Temp"
        await until(lambda: watcher.json(temp) is not None)
        edge.kill()
        await until(lambda: watcher.json(temp)["quality"] == "stale", what="stale after will")  # type: ignore[index]


async def test_unbound_device_appears_under_the_default_path_flagged(hub: RunningHub) -> None:
    async with _started(hub) as (edge, watcher):
        edge.nbirth([])
        edge.send("DBIRTH", [metric("Level", 3.5, DOUBLE)], device="Mixer 7")
        topic = f"{hub.enterprise}/unbound/{hub.group}/{hub.node}/mixer-7/data/Level"
        await until(lambda: watcher.json(topic) is not None, what=topic)
        envelope = watcher.json(topic)
        assert envelope is not None
        assert envelope["unbound"] is True
        assert envelope["value"] == 3.5
        assert f"{hub.group}/{hub.node}/Mixer 7" in hub.host.core.unbound


async def test_state_is_retained_online_json(hub: RunningHub) -> None:
    watcher = Watcher(hub.url, [hub.host.state_topic])
    await watcher.start()
    try:
        await until(lambda: watcher.json(hub.host.state_topic) is not None)
        state = watcher.json(hub.host.state_topic)
        assert state is not None
        assert state["online"] is True
        assert isinstance(state["timestamp"], int)
    finally:
        watcher.stop()


async def test_health_topic_reports_counts(hub: RunningHub) -> None:
    async with edge_and_watcher(hub.url, hub.group, hub.node, [f"{hub.enterprise}/hub/#"]) as (edge, watcher):
        _birth(edge)
        health = f"{hub.enterprise}/hub/host/health"
        await until(lambda: int((watcher.json(health) or {}).get("metrics_republished", 0)) >= 6, what="health")  # type: ignore[call-overload]
        doc = watcher.json(health)
        assert doc is not None
        assert doc["nodes_online"] == 1
        assert doc["devices_online"] == 1
        assert doc["rejected"] == {}


async def _born_then_ndeath(hub: RunningHub, edge: RawEdgeNode, watcher: Watcher, *, bd_seq: int) -> tuple[str, str]:
    """The node and its device born and republished, then an NDEATH carrying ``bd_seq``: the Temp and Uptime topics."""
    _birth(edge)
    temp, uptime = f"{hub.cell}/data/Temp", f"{hub.line}/data/Uptime"
    await until(lambda: watcher.json(temp) is not None, what=temp)
    edge.publish("NDEATH", payload([metric("bdSeq", bd_seq, INT64)], None))
    return temp, uptime


async def test_a_late_nbirth_after_the_ndeath_of_its_bdseq_keeps_the_node_offline_until_it_answers_a_rebirth(
    hub: RunningHub,
) -> None:
    # MQTT orders per topic only: the will (NDEATH bdSeq 5) can overtake a rebirth's NBIRTH (bdSeq 5) in flight
    async with _started(hub, bd_seq=5) as (edge, watcher):
        temp, uptime = await _born_then_ndeath(hub, edge, watcher, bd_seq=5)
        await until(lambda: watcher.json(temp)["quality"] == "stale", what="stale Temp")  # type: ignore[index]
        _birth(edge)  # the rebirth that was in flight: NBIRTH bdSeq 5, then its DBIRTH
        edge.send("DDATA", [metric(None, 99.0, DOUBLE, alias=1, with_datatype=False)], device="filler")
        counters = hub.host.core.counters
        await until(lambda: counters.rejected["data_before_birth"] == 2, what="the DBIRTH and DDATA refused")
        assert counters.rejected["late_nbirth"] == 1
        assert (watcher.json(temp)["quality"], watcher.json(temp)["value"]) == ("stale", 72.5)  # type: ignore[index]
        assert watcher.json(uptime)["quality"] == "stale"  # type: ignore[index]
        node = hub.host.core.nodes[(hub.group, hub.node)]
        assert (node.online, node.devices["filler"].online) == (False, False)
        assert hub.host.core.health()["nodes_online"] == 0
        # a node alive with that bdSeq after all (one that restarts at bdSeq 0) is asked once what was in flight came
        await until(lambda: edge.rebirth_requests() == 1, what="the rebirth asked after the late NBIRTH")
        _birth(edge)
        await until(lambda: watcher.json(temp)["quality"] == "good", what="born again")  # type: ignore[index]
        assert watcher.json(uptime)["quality"] == "good"  # type: ignore[index]
        assert hub.host.core.health()["nodes_online"] == 1
        assert edge.rebirth_requests() == 1  # the refused DBIRTH and DDATA asked for none
        assert counters.rejected["late_nbirth"] == 1


async def test_after_a_late_nbirth_the_next_session_s_birth_is_taken_at_once_and_no_rebirth_asked(
    hub: RunningHub,
) -> None:
    async with _started(hub, bd_seq=5) as (edge, watcher):
        temp, _ = await _born_then_ndeath(hub, edge, watcher, bd_seq=5)
        _birth(edge)  # late: refused
        counters = hub.host.core.counters
        await until(lambda: counters.rejected["late_nbirth"] == 1, what="the late NBIRTH refused")
        edge.bd_seq = 6  # the node reconnected: its will and NBIRTH carry the next bdSeq
        _birth(edge)
        await until(lambda: watcher.json(temp)["quality"] == "good", what="born again")  # type: ignore[index]
        await asyncio.sleep(1.5)  # past the moment the rebirth would have been asked
        assert edge.rebirth_requests() == 0
        assert hub.host.core.health()["nodes_online"] == 1


async def test_an_nbirth_after_an_ndeath_of_its_bdseq_ahead_of_the_session_takes_the_node_offline(
    hub: RunningHub,
) -> None:
    # the node connected again (bdSeq 6) and died at once: its will overtook its NBIRTH, while session 5 was held
    async with _started(hub, bd_seq=5) as (edge, watcher):
        temp, uptime = await _born_then_ndeath(hub, edge, watcher, bd_seq=6)
        edge.bd_seq = 6
        _birth(edge)  # NBIRTH bdSeq 6, then its DBIRTH
        counters = hub.host.core.counters
        await until(lambda: counters.rejected["data_before_birth"] == 1, what="the DBIRTH refused")
        assert (counters.rejected["bdseq_mismatch"], counters.rejected["late_nbirth"], counters.deaths) == (1, 1, 1)
        await until(lambda: watcher.json(temp)["quality"] == "stale", what="stale Temp")  # type: ignore[index]
        assert watcher.json(uptime)["quality"] == "stale"  # type: ignore[index]
        assert hub.host.core.nodes[(hub.group, hub.node)].online is False
        assert hub.host.core.health()["nodes_online"] == 0


async def test_an_nbirth_after_an_ndeath_of_its_bdseq_on_a_node_offline_keeps_the_node_offline(
    hub: RunningHub,
) -> None:
    # session 5 ended; the node connected again (bdSeq 6) and died at once, its will overtaking its NBIRTH
    async with _started(hub, bd_seq=5) as (edge, watcher):
        temp, uptime = await _born_then_ndeath(hub, edge, watcher, bd_seq=5)
        await until(lambda: watcher.json(temp)["quality"] == "stale", what="stale Temp")  # type: ignore[index]
        counters = hub.host.core.counters
        handled = counters.messages
        edge.publish("NDEATH", payload([metric("bdSeq", 6, INT64)], None))
        edge.bd_seq = 6
        _birth(edge)  # NBIRTH bdSeq 6, then its DBIRTH
        await until(lambda: counters.messages >= handled + 3, what="the NDEATH, NBIRTH and DBIRTH handled")
        assert (counters.rejected["late_nbirth"], counters.rejected["data_before_birth"]) == (1, 1)
        assert (counters.births, counters.deaths, counters.rejected["bdseq_mismatch"]) == (2, 1, 0)
        assert hub.host.core.nodes[(hub.group, hub.node)].online is False
        assert hub.host.core.health()["nodes_online"] == 0
        await asyncio.sleep(0.1)  # a birth taken would have been republished by now
        assert (watcher.json(temp)["quality"], watcher.json(uptime)["quality"]) == ("stale", "stale")  # type: ignore[index]


def _qualities(watcher: Watcher, topic: str) -> list[object]:
    """The quality of every envelope published on ``topic``, in order (not only the last)."""
    with watcher.lock:
        return [json.loads(body)["quality"] for t, body in watcher.messages if t == topic]


async def _two_devices_born_again_but_one(hub: RunningHub, edge: RawEdgeNode, watcher: Watcher) -> tuple[str, str]:
    """``filler`` and ``mixer`` born, then a rebirth (NBIRTH, ``filler``'s DBIRTH) that leaves ``mixer`` out."""
    _birth(edge)
    edge.send("DBIRTH", [metric("Level", 3.5, DOUBLE)], device="mixer")
    temp, level = f"{hub.cell}/data/Temp", f"{hub.enterprise}/unbound/{hub.group}/{hub.node}/mixer/data/Level"
    await until(lambda: watcher.json(level) is not None, what=level)
    _birth(edge)
    await until(lambda: len(_qualities(watcher, temp)) == 2, what="filler born again")
    return temp, level


async def test_a_device_its_node_s_new_session_does_not_birth_goes_stale_at_the_session_s_first_data(
    hub: RunningHub,
) -> None:
    # Sparkplug 3.0: every DBIRTH of a session comes right after its NBIRTH, before any NDATA or DDATA
    async with _started(hub) as (edge, watcher):
        temp, level = await _two_devices_born_again_but_one(hub, edge, watcher)
        born_ms = watcher.json(level)["timestamp_ms"]  # type: ignore[index]
        edge.send("NDATA", [metric("Uptime", 13, INT64)])
        await until(lambda: watcher.json(f"{hub.line}/data/Uptime")["value"] == 13, what="the NDATA")  # type: ignore[index]
        assert _qualities(watcher, level) == ["good", "stale"]  # marked before the NDATA's values went out
        stale = watcher.json(level)
        assert stale is not None
        assert (stale["value"], stale["unbound"]) == (3.5, True)
        assert stale["timestamp_ms"] > born_ms  # type: ignore[operator]
        assert _qualities(watcher, temp) == ["good", "good"]  # born again in time: never stale, no blip
        assert watcher.json(f"{hub.cell}/data/Speed")["quality"] == "good"  # type: ignore[index]
        node = hub.host.core.nodes[(hub.group, hub.node)]
        assert (node.devices["filler"].online, node.devices["mixer"].online) == (True, False)
        assert hub.host.core.counters.deaths == 0  # no death message came
        edge.send("DDATA", [metric(None, 80.0, DOUBLE, alias=1, with_datatype=False)], device="filler")
        await until(lambda: watcher.json(temp)["value"] == 80.0, what="the filler's DDATA")  # type: ignore[index]
        assert _qualities(watcher, temp) == ["good", "good", "good"]
        assert _qualities(watcher, level) == ["good", "stale"]  # once


_GRACE_S = 1.0


@pytest.fixture(params=["embedded", "mosquitto", "worker"])
async def quick_grace_hub(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """``hub`` with ``host.dbirth_grace_s`` at ``_GRACE_S``: the wait for the DBIRTHs of a new session, in full."""
    mosquitto = request.getfixturevalue("mosquitto") if request.param == "mosquitto" else None
    async with running_host(request.param, mosquitto, tmp_path, dbirth_grace_s=_GRACE_S) as running:
        yield running


async def test_a_device_its_node_s_new_session_does_not_birth_goes_stale_after_the_grace_with_no_data(
    quick_grace_hub: RunningHub,
) -> None:
    hub = quick_grace_hub
    async with _started(hub) as (edge, watcher):
        before_ms = now_ms()
        temp, level = await _two_devices_born_again_but_one(hub, edge, watcher)
        await until(lambda: _qualities(watcher, level)[-1] == "stale", what="Level stale", within_s=_GRACE_S + 5.0)
        assert watcher.json(level)["timestamp_ms"] >= before_ms + _GRACE_S * 1000  # type: ignore[index,operator]
        assert _qualities(watcher, level) == ["good", "stale"]
        assert _qualities(watcher, temp) == ["good", "good"]
        assert hub.host.core.counters.deaths == 0
        mixer = hub.host.core.nodes[(hub.group, hub.node)].devices["mixer"]  # with host.worker, the mirror
        await until(lambda: mixer.death_ms is not None, what="the mixer's death time", within_s=1.0)
        assert (mixer.online, mixer.death_ms) == (False, watcher.json(level)["timestamp_ms"])  # type: ignore[index]


async def test_a_device_still_awaited_when_its_node_dies_goes_stale_with_it(hub: RunningHub) -> None:
    async with _started(hub) as (edge, watcher):
        temp, level = await _two_devices_born_again_but_one(hub, edge, watcher)
        edge.publish("NDEATH", payload([metric("bdSeq", 0, INT64)], None))
        await until(lambda: _qualities(watcher, temp)[-1] == "stale", what="stale Temp")
        await until(
            lambda: _qualities(watcher, level)[-1] == "stale", what="stale Level", within_s=1.0
        )  # not the grace
        assert _qualities(watcher, level) == ["good", "stale"]
        assert hub.host.core.counters.deaths == 1  # the node's


async def test_a_ddeath_of_a_device_still_awaited_marks_it_stale_at_once(hub: RunningHub) -> None:
    # Sparkplug 3.0: a host marks a device's metrics stale immediately after its DDEATH, awaited or not
    async with _started(hub) as (edge, watcher):
        temp, level = await _two_devices_born_again_but_one(hub, edge, watcher)
        edge.send("DDEATH", [], device="mixer")
        await until(
            lambda: _qualities(watcher, level)[-1] == "stale", what="stale Level", within_s=1.0
        )  # not the grace
        assert _qualities(watcher, level) == ["good", "stale"]
        assert _qualities(watcher, temp) == ["good", "good"]
        assert hub.host.core.counters.deaths == 1  # a death message came
        mixer = hub.host.core.nodes[(hub.group, hub.node)].devices["mixer"]  # with host.worker, the mirror
        await until(lambda: mixer.death_ms is not None, what="the mixer's death time", within_s=1.0)
        assert (mixer.online, mixer.death_ms) == (False, watcher.json(level)["timestamp_ms"])  # type: ignore[index]
        edge.send("NDATA", [metric("Uptime", 13, INT64)])  # the session's first DATA: nothing left to mark
        await until(lambda: watcher.json(f"{hub.line}/data/Uptime")["value"] == 13, what="the NDATA")  # type: ignore[index]
        assert _qualities(watcher, level) == ["good", "stale"]  # once


async def _stale_then_born_again(watcher: Watcher, edge: RawEdgeNode, temp: str, read_ms: int) -> tuple[int, int, int]:
    """Once ``temp`` is stale, the DBIRTH of ``filler`` with Temp read at ``read_ms``: (mark, sent, good) times."""
    await until(lambda: _qualities(watcher, temp)[-1] == "stale", what="Temp stale")
    mark = watcher.json(temp)["timestamp_ms"]  # type: ignore[index]
    assert isinstance(mark, int)
    sent_ms = now_ms()
    edge.send("DBIRTH", [read_at(metric("Temp", 72.5, DOUBLE, alias=1), read_ms)], device="filler")
    await until(lambda: _qualities(watcher, temp)[-1] == "good", what="Temp born again")
    good = watcher.json(temp)["timestamp_ms"]  # type: ignore[index]
    assert isinstance(good, int)
    return mark, sent_ms, good


async def test_a_device_born_again_after_its_stale_mark_is_stamped_at_its_birth_however_old_its_read_time(
    hub: RunningHub,
) -> None:
    # a DBIRTH carries the time each value was read (Ignition's transmitters: the tag's last change), before the
    # mark: stamped so, the stale mark would stay the newest sample downstream until the value changed
    async with _started(hub) as (edge, watcher):
        _birth(edge)
        temp = f"{hub.cell}/data/Temp"
        await until(lambda: watcher.json(temp) is not None, what=temp)
        read_ms = watcher.json(temp)["timestamp_ms"]  # type: ignore[index]
        assert isinstance(read_ms, int)
        edge.send("DDEATH", [], device="filler")
        mark, sent_ms, good = await _stale_then_born_again(watcher, edge, temp, read_ms)
        assert mark > read_ms  # the mark is after the value it marks
        assert max(sent_ms, mark + 1) <= good <= now_ms()  # max(min(sent, received), mark + 1)
        # a device its node's new session births after the session's first DATA: marked then, born after the mark
        edge.nbirth([metric("Uptime", 12, INT64)])
        edge.send("NDATA", [metric("Uptime", 13, INT64)])
        mark, sent_ms, good = await _stale_then_born_again(watcher, edge, temp, read_ms)
        assert max(sent_ms, mark + 1) <= good <= now_ms()
        assert _qualities(watcher, temp) == ["good", "stale", "good", "stale", "good"]


async def test_a_rebirth_of_a_live_node_keeps_the_times_its_metrics_were_read(hub: RunningHub) -> None:
    async with _started(hub) as (edge, watcher):
        _birth(edge)
        temp, uptime = f"{hub.cell}/data/Temp", f"{hub.line}/data/Uptime"
        await until(lambda: watcher.json(temp) is not None, what=temp)
        read_ms = now_ms() - 60_000  # no death, no stale mark: the read times stand, however old
        edge.nbirth([read_at(metric("Uptime", 14, INT64), read_ms)])
        edge.send("DBIRTH", [read_at(metric("Temp", 70.0, DOUBLE, alias=1), read_ms)], device="filler")
        await until(lambda: watcher.json(temp)["value"] == 70.0, what="Temp born again")  # type: ignore[index]
        await until(lambda: watcher.json(uptime)["value"] == 14, what="Uptime born again")  # type: ignore[index]
        assert [(e["quality"], e["timestamp_ms"]) for e in (watcher.json(temp), watcher.json(uptime))] == [  # type: ignore[index]
            ("good", read_ms),
            ("good", read_ms),
        ]
