"""Bad Sparkplug input is rejected, named and counted; the host keeps running and keeps every good metric."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fixtures.hub import RunningHub, running_host
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import (
    BOOLEAN,
    DOUBLE,
    INT32,
    STRING,
    RawEdgeNode,
    Watcher,
    edge_and_watcher,
    metric,
    payload,
)
from uns.sparkplug import sparkplug_b_pb2 as pb


@contextlib.asynccontextmanager
async def _birthed(hub: RunningHub) -> AsyncIterator[tuple[RawEdgeNode, Watcher]]:
    async with edge_and_watcher(hub.url, hub.group, hub.node, [f"{hub.enterprise}/#"]) as (edge, watcher):
        edge.nbirth([])
        edge.send("DBIRTH", [metric("Temp", 20.0, DOUBLE, alias=1)], device="filler")
        yield edge, watcher


async def _still_republishes(hub: RunningHub, edge: RawEdgeNode, watcher: Watcher, value: float) -> None:
    edge.send("DDATA", [metric(None, value, DOUBLE, alias=1, with_datatype=False)], device="filler")
    await until(lambda: (watcher.json(f"{hub.cell}/data/Temp") or {}).get("value") == value, what=f"Temp={value}")


def _rejected(hub: RunningHub, reason: str) -> int:
    return hub.host.core.counters.rejected[reason]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\xff\xff\xff\xff\xff", id="garbage"),
        pytest.param(payload([metric("Temp", 1.0, DOUBLE)], 1)[:-3], id="truncated"),
        pytest.param(b"\x12\x80", id="length-past-end"),
    ],
)
async def test_undecodable_payloads_are_counted(hub: RunningHub, raw: bytes) -> None:
    async with _birthed(hub) as (edge, watcher):
        await until(lambda: watcher.json(f"{hub.cell}/data/Temp") is not None)
        edge.publish("DDATA", raw, device="filler")
        await until(lambda: _rejected(hub, "payload_undecodable") == 1, what="payload_undecodable")
        edge.seq = (edge.seq + 1) % 256  # the broken message used a seq number
        await _still_republishes(hub, edge, watcher, 21.5)


async def test_wrong_topic_shapes_are_counted(hub: RunningHub) -> None:
    async with _birthed(hub) as (edge, watcher):
        good = payload([metric("Temp", 1.0, DOUBLE)], 1)
        for topic in (
            f"spBv1.0/{hub.group}/NDATA",
            f"spBv1.0/{hub.group}/BOGUS/{hub.node}",
            f"spBv1.0/{hub.group}/DDATA/{hub.node}",
            f"spBv1.0/{hub.group}/NDATA/{hub.node}/extra",
        ):
            edge.client.publish(topic, good)
        await until(lambda: _rejected(hub, "bad_topic") == 4, what="4 bad topics")
        await _still_republishes(hub, edge, watcher, 22.5)


async def test_bad_metric_names_and_datatypes_lose_only_themselves(hub: RunningHub) -> None:
    async with _birthed(hub) as (edge, watcher):
        bad_type = metric("Odd", 1, INT32)
        bad_type.datatype = 99
        edge.send(
            "DBIRTH",
            [
                metric("", 1.0, DOUBLE),
                metric("a//b", 1.0, DOUBLE),
                metric("Plus+", 1.0, DOUBLE),
                metric("Hash#", 1.0, DOUBLE),
                bad_type,
                metric("Good/One", 5.0, DOUBLE),
                metric("Temp", 20.0, DOUBLE, alias=1),
            ],
            device="filler",
        )
        await until(lambda: watcher.json(f"{hub.cell}/data/Good/One") is not None, what="the good metric")
        assert _rejected(hub, "bad_metric_name") == 4
        assert _rejected(hub, "unknown_datatype") + _rejected(hub, "bad_value") == 1
        await _still_republishes(hub, edge, watcher, 23.5)
        assert sum(1 for topic in watcher.last if "/data/" in topic and topic.startswith(hub.cell)) == 2


@pytest.fixture(params=["embedded", "mosquitto", "worker"])
async def small_hub(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningHub]:
    mosquitto = request.getfixturevalue("mosquitto") if request.param == "mosquitto" else None
    async with running_host(request.param, mosquitto, tmp_path, max_payload_bytes=2000) as running:
        yield running


async def test_oversize_payloads_are_refused(small_hub: RunningHub) -> None:
    hub = small_hub
    async with _birthed(hub) as (edge, watcher):
        other = RawEdgeNode(hub.url, hub.group, "edge2", reconnect=False)  # the embedded broker drops it
        await other.start()
        try:
            await until(lambda: watcher.json(f"{hub.cell}/data/Temp") is not None)
            other.publish("NDATA", payload([metric("Blob", "x" * 5000, 12)], 1))
            if hub.broker is not None:
                # the embedded broker refuses it before anyone sees it, and drops that client
                broker = hub.broker
                await until(lambda: broker.stats.oversize_rejected == 1, what="broker oversize count")
            else:
                await until(lambda: _rejected(hub, "payload_too_large") == 1, what="host oversize count")
            await _still_republishes(hub, edge, watcher, 24.5)
        finally:
            other.kill()


INT8 = 1
_BORN = {1: ("Temp", 20.0, DOUBLE), 2: ("Count", 0, INT32), 3: ("Flag", False, BOOLEAN), 4: ("Small", 0, INT8)}
_NEXT = {1: 21.0, 2: 7, 3: True, 4: 5}


def _declaring(alias: int, value: object, declared: int) -> pb.Payload.Metric:
    """A DATA metric by alias whose value fits the datatype it declares, not the one it was born with."""
    return metric(None, value, declared, alias=alias)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        pytest.param(
            _declaring(1, "not a number", STRING), "declares String but was born Double", id="string-on-double"
        ),
        pytest.param(_declaring(3, 1, INT32), "declares Int32 but was born Boolean", id="int-on-boolean"),
        pytest.param(_declaring(4, 1000, INT32), "declares Int32 but was born Int8", id="int32-on-int8"),
        pytest.param(metric(None, 300, INT8, alias=4, with_datatype=False), "300 in int_value", id="int8-range"),
    ],
)
async def test_a_value_contradicting_its_birth_datatype_is_refused_alone(
    hub: RunningHub, bad: pb.Payload.Metric, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with edge_and_watcher(hub.url, hub.group, hub.node, [f"{hub.enterprise}/#"]) as (edge, watcher):
        edge.nbirth([])
        edge.send("DBIRTH", [metric(n, v, t, alias=a) for a, (n, v, t) in _BORN.items()], device="filler")
        topics = {a: f"{hub.cell}/data/{n}" for a, (n, _v, _t) in _BORN.items()}
        await until(lambda: all(watcher.json(t) is not None for t in topics.values()), what="birth republished")
        good = [a for a in _BORN if a != bad.alias][:2]
        edge.send(
            "DDATA",
            [bad, *(metric(None, _NEXT[a], _BORN[a][2], alias=a, with_datatype=False) for a in good)],
            device="filler",
        )

        def updated() -> bool:
            return all((watcher.json(topics[a]) or {}).get("value") == _NEXT[a] for a in good)

        await until(updated, what="the two good metrics")
        # one message's metrics are republished in order: the bad one, first, would be here by now
        with watcher.lock:
            values = [json.loads(p)["value"] for t, p in watcher.messages if t == topics[bad.alias]]
        assert values == [_BORN[bad.alias][1]]
        assert hub.host.core.counters.rejected["bad_value"] == 1
        assert hub.host.core.counters.rebirths_requested == 0
        assert edge.rebirth_requests() == 0
        name = _BORN[bad.alias][0]
        logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("bad_value on spBv1.0/")]
        assert len(logged) == 1
        assert f"DDATA/{hub.node}/filler" in logged[0]
        assert f"({name!r}, alias {bad.alias})" in logged[0]
        assert why in logged[0]
