"""Sparkplug ``is_transient`` end to end: live on the UNS, left out of history, still counted by the MES.

A third-party edge node (raw paho and the generated protobuf, not our encoder) births a normal and three
transient metrics and then sends DATA without the flag; the real host republishes them, the real historian
and MES adapter read the UNS (Sparkplug 3.0, payloads chapter, Metric ``is_transient``: "Transient metrics
can be considered those that are of interest to a host application(s) but should not be stored in a
historian"). And the pure core: the birth's flag holds for the metric's life, as Eclipse Tahu's host keeps it.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from model.config import DeriveRule
from tests.fixtures.consumers import running_consumers
from tests.fixtures.hub import RunningHub, plant_for
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import DOUBLE, INT32, INT64, edge_and_watcher, metric, now_ms, payload
from uns.host.core import HostCore
from uns.sparkplug import sparkplug_b_pb2 as pb


def _derive(enterprise: str) -> list[DeriveRule]:
    """The MES derives a state and a good count from the cell's transient State and GoodCount."""
    cells = f"{enterprise}/+/+/+/+/data"
    return [
        DeriveRule(match=f"{cells}/State", kind="state", state_map={1: 10000}),
        DeriveRule(match=f"{cells}/GoodCount", kind="counter", counts="good"),
    ]


def _transient(m: pb.Payload.Metric) -> pb.Payload.Metric:
    m.is_transient = True
    return m


async def test_a_transient_metric_is_live_on_the_uns_and_in_the_mes_but_not_in_history(
    hub: RunningHub, tmp_path: Path
) -> None:
    temp, vibration = f"{hub.cell}/data/Temp", f"{hub.cell}/data/Vibration"
    state, good = f"{hub.cell}/data/State", f"{hub.cell}/data/GoodCount"
    async with (
        running_consumers(hub, tmp_path, derive=_derive(hub.enterprise)) as seen,
        edge_and_watcher(hub.url, hub.group, hub.node, [f"{hub.cell}/data/#"]) as (edge, watcher),
    ):
        born = [
            metric("Temp", 20.0, DOUBLE, alias=1),
            _transient(metric("Vibration", 0.5, DOUBLE, alias=2)),
            _transient(metric("State", 1, INT32, alias=3)),
            _transient(metric("GoodCount", 100, INT64, alias=4)),
        ]
        for m in born:
            m.timestamp -= 1000  # a second before the DATA
        edge.nbirth([])
        edge.send("DBIRTH", born, "filler")
        # DATA by alias only, without is_transient (as datatype, the flag is the birth's); Temp last
        edge.send(
            "DDATA",
            [
                metric(None, 0.75, DOUBLE, alias=2, with_datatype=False),
                metric(None, 105, INT64, alias=4, with_datatype=False),
                metric(None, 25.0, DOUBLE, alias=1, with_datatype=False),
            ],
            "filler",
        )
        await until(lambda: [v for v, *_ in seen.samples(temp)] == [20.0, 25.0], what="both Temp samples stored")
        # live on the UNS: the value, marked not to be historized; the normal metric unmarked
        await until(lambda: (watcher.json(vibration) or {}).get("value") == 0.75, what="Vibration's DATA republished")
        live = watcher.json(vibration)
        assert live is not None
        assert (live["value"], live["transient"], live["datatype"], live["quality"]) == (0.75, True, "Double", "good")
        assert (watcher.json(state) or {}).get("transient") is True
        assert (watcher.json(good) or {}).get("value") == 105
        temp_live = watcher.json(temp)
        assert temp_live is not None
        assert temp_live["value"] == 25.0
        assert "transient" not in temp_live
        # the MES derives from the UNS, not from history: the transient state and counter still count
        await until(lambda: seen.mes_state(hub.cell) == 10000, what="MES: producing from the transient State")
        await until(lambda: seen.mes_good(hub.cell) == 5, what="MES: 5 good from the transient counter")
        # history: the normal metric only; each transient sample skipped on purpose, and counted
        assert [seen.series(topic) for topic in (vibration, state, good)] == [0, 0, 0]
        assert seen.samples(vibration) == seen.samples(state) == seen.samples(good) == []
        assert seen.historian.health()["transient_skipped"] == 5  # 3 in the DBIRTH, 2 in the DDATA
        assert seen.historian.health()["rejected"] == 0


def _core() -> HostCore:
    return HostCore(plant=plant_for("acme", "g", "n"))


def _republished(core: HostCore, kind: str, metrics: list[pb.Payload.Metric], seq: int) -> dict[str, object]:
    out = core.handle(f"spBv1.0/g/{kind}/n/filler", payload(metrics, seq), now_ms())
    (message,) = [m for m in out if m.topic.endswith("/data/Vibration")]
    body = orjson.loads(message.payload)
    assert isinstance(body, dict)
    return body


def test_the_births_flag_holds_until_the_next_birth() -> None:
    core = _core()
    core.handle("spBv1.0/g/NBIRTH/n", payload([metric("bdSeq", 0, INT64)], 0), now_ms())
    born = _republished(core, "DBIRTH", [_transient(metric("Vibration", 0.5, DOUBLE, alias=2))], 1)
    assert (born["value"], born.get("transient")) == (0.5, True)
    data = _republished(core, "DDATA", [metric(None, 0.7, DOUBLE, alias=2, with_datatype=False)], 2)
    assert (data["value"], data.get("transient")) == (0.7, True)  # left out in DATA: still the birth's
    explicit = metric(None, 0.75, DOUBLE, alias=2, with_datatype=False)
    explicit.is_transient = False  # on the wire (proto2 presence), read as absent: a DATA cannot clear the birth's
    assert explicit.HasField("is_transient")
    assert _republished(core, "DDATA", [explicit], 3).get("transient") is True
    reborn = _republished(core, "DBIRTH", [metric("Vibration", 0.8, DOUBLE, alias=2)], 4)
    assert (reborn["value"], reborn.get("transient")) == (0.8, None)  # a new birth without it: historized again
    flagged = _republished(core, "DDATA", [_transient(metric(None, 0.9, DOUBLE, alias=2, with_datatype=False))], 5)
    assert flagged.get("transient") is True  # a DATA may flag one sample of a metric born normal
    plain = _republished(core, "DDATA", [metric(None, 1.0, DOUBLE, alias=2, with_datatype=False)], 6)
    assert plain.get("transient") is None
    assert core.counters.rejected == {}


def test_a_transient_metrics_stale_value_is_transient_too() -> None:
    core = _core()
    core.handle("spBv1.0/g/NBIRTH/n", payload([metric("bdSeq", 0, INT64)], 0), now_ms())
    _republished(core, "DBIRTH", [_transient(metric("Vibration", 0.5, DOUBLE, alias=2))], 1)
    stale = _republished(core, "DDEATH", [], 2)
    assert (stale["quality"], stale["value"], stale.get("transient")) == ("stale", 0.5, True)
