"""Bounded memory from births: metrics per birth, devices per node, nodes and series, each with a small bound.

Past a bound the host refuses with a reason naming the topic and the bound, counts it, marks the node
degraded (its status and the health document) and keeps serving every other node and device. The
host's pure core, fed the bytes a third-party edge node sends.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest

from model.config import HostSection
from tests.fixtures.broker import start_broker
from tests.fixtures.hub import plant_for
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import DOUBLE, INT64, Watcher, edge_and_watcher, metric, payload
from uns.connect import local_clients
from uns.host.bounds import HostBounds
from uns.host.core import HostCore
from uns.host.service import SparkplugHost
from uns.mqtt.types import Message

_GROUP, _NODE = "g", "edge1"
_LINE = "acme/dallas/packaging/line1"
_NOW = 1_764_000_000_000


def _core(**bounds: int) -> HostCore:
    return HostCore(plant=plant_for("acme", _GROUP, _NODE), bounds=HostBounds(**bounds))


def _topic(kind: str, device: str | None = None, node: str = _NODE) -> str:
    return f"spBv1.0/{_GROUP}/{kind}/{node}" + (f"/{device}" if device else "")


def _nbirth(core: HostCore, node: str = _NODE, metrics: int = 1) -> list[Message]:
    body = [metric("bdSeq", 0, INT64), *(metric(f"N{i}", i, INT64) for i in range(metrics))]
    return core.handle(_topic("NBIRTH", node=node), payload(body, 0), _NOW)


def _dbirth(core: HostCore, device: str, metrics: int, seq: int, node: str = _NODE) -> list[Message]:
    body = [metric(f"M{i}", float(i), DOUBLE, alias=i + 1) for i in range(metrics)]
    return core.handle(_topic("DBIRTH", device, node), payload(body, seq), _NOW)


def _ddata(core: HostCore, device: str, value: float, seq: int, node: str = _NODE) -> list[Message]:
    return core.handle(_topic("DDATA", device, node), payload([metric(None, value, DOUBLE, alias=1)], seq), _NOW)


def _values(out: list[Message]) -> list[object]:
    return [orjson.loads(m.payload)["value"] for m in out if "/data/" in m.topic]


def _qualities(out: list[Message]) -> list[object]:
    return [orjson.loads(m.payload)["quality"] for m in out if "/data/" in m.topic]


def _status(out: list[Message]) -> dict[str, object]:
    (status,) = [orjson.loads(m.payload) for m in out if "/hub/host/nodes/" in m.topic]
    return status  # type: ignore[no-any-return]


def _ncmds(out: list[Message]) -> int:
    return sum(1 for m in out if "/NCMD/" in m.topic)


def test_a_birth_past_max_metrics_is_refused_and_the_rest_served(caplog: pytest.LogCaptureFixture) -> None:
    core = _core(max_metrics_per_birth=3)
    _nbirth(core)
    assert _values(_dbirth(core, "a", 2, 1)) == [0.0, 1.0]
    with caplog.at_level(logging.WARNING):
        out = _dbirth(core, "a", 4, 2)  # a rebirth that grew past the bound
    assert _qualities(out) == ["stale", "stale"]
    status = _status(out)
    reason = status["degraded"]["g/edge1/a"]  # type: ignore[index]
    assert reason == "birth_too_large: DBIRTH has 4 metrics, more than host.max_metrics_per_birth=3"
    assert status["devices"]["a"]["online"] is False  # type: ignore[index]
    assert core.counters.rejected["birth_too_large"] == 1
    assert "spBv1.0/g/DBIRTH/edge1/a" in caplog.text
    assert "host.max_metrics_per_birth=3" in caplog.text
    assert core.health()["nodes_degraded"] == 1
    assert core.health()["degraded"] == ["g/edge1"]
    assert core.health()["series"] == 2  # bdSeq and N0: the refused device's slots are freed
    # its DATA is refused without a rebirth request (the same birth would come again)
    assert _ncmds(_ddata(core, "a", 5.0, 3)) == 0
    assert core.counters.rejected["data_before_birth"] == 1
    # everyone else is served: another device of the same node
    assert _values(_dbirth(core, "b", 3, 4)) == [0.0, 1.0, 2.0]
    assert _values(_ddata(core, "b", 7.5, 5)) == [7.5]
    # a birth within the bound clears the degradation
    _dbirth(core, "a", 1, 6)
    assert core.health()["nodes_degraded"] == 0


def test_an_nbirth_past_max_metrics_ends_the_session_with_its_values_stale() -> None:
    core = _core(max_metrics_per_birth=3)
    _nbirth(core, metrics=2)
    _dbirth(core, "a", 1, 1)
    out = _nbirth(core, metrics=3)  # bdSeq + 3 metrics
    stale = {m.topic.rsplit("/", 3)[-3:][-1]: orjson.loads(m.payload)["quality"] for m in out if "/data/" in m.topic}
    assert stale == {"bdSeq": "stale", "N0": "stale", "N1": "stale", "M0": "stale"}
    assert _status(out)["online"] is False
    assert core.health()["series"] == 0
    assert _ncmds(_ddata(core, "a", 1.0, 2)) == 0  # no rebirth loop with a birth we would refuse again


def test_a_birth_refused_for_a_device_awaited_since_a_new_nbirth_marks_its_values_stale() -> None:
    # the rebirth's NBIRTH took the device offline, its values still good until its DBIRTH or the session's DATA
    core = _core(max_metrics_per_birth=3)
    _nbirth(core)
    _dbirth(core, "a", 2, 1)
    _nbirth(core)  # a rebirth: "a" awaited
    out = _dbirth(core, "a", 4, 1)  # grown past the bound: refused
    assert _qualities(out) == ["stale", "stale"]
    _dbirth(core, "b", 1, 2)
    assert _values(_ddata(core, "b", 7.5, 3)) == [7.5]  # the session's first DATA: nothing left to mark


def test_an_nbirth_refused_after_a_new_nbirth_marks_the_devices_it_awaited_stale() -> None:
    core = _core(max_metrics_per_birth=3)
    _nbirth(core)
    _dbirth(core, "a", 1, 1)
    _nbirth(core)  # a rebirth: "a" awaited
    out = _nbirth(core, metrics=3)  # bdSeq + 3 metrics: refused
    stale = {m.topic.rsplit("/", 1)[-1]: orjson.loads(m.payload)["quality"] for m in out if "/data/" in m.topic}
    assert stale == {"bdSeq": "stale", "N0": "stale", "M0": "stale"}
    assert core.tick(_NOW + 60_000) == []  # nothing left awaited: no second mark


def test_a_device_past_max_devices_per_node_is_refused() -> None:
    core = _core(max_devices_per_node=2)
    _nbirth(core)
    _dbirth(core, "a", 1, 1)
    _dbirth(core, "b", 1, 2)
    out = _dbirth(core, "c", 1, 3)
    assert _values(out) == []
    assert _status(out)["degraded"] == {  # published once, when the node first passes the bound
        "devices": "too_many_devices: node has 2 devices, host.max_devices_per_node=2"
    }
    assert core.counters.rejected["too_many_devices"] == 1
    assert sorted(core.nodes[(_GROUP, _NODE)].devices) == ["a", "b"]
    assert _values(_ddata(core, "a", 3.5, 4)) == [3.5]


def test_a_node_past_max_nodes_is_refused_and_the_others_served() -> None:
    core = _core(max_nodes=2)
    _nbirth(core, "n1")
    _nbirth(core, "n2")
    assert _nbirth(core, "n3") == []
    assert core.counters.rejected["too_many_nodes"] == 1
    assert sorted(core.nodes) == [(_GROUP, "n1"), (_GROUP, "n2")]
    _dbirth(core, "a", 1, 1, node="n2")
    assert _values(_ddata(core, "a", 9.0, 2, node="n2")) == [9.0]


def test_a_birth_that_would_pass_max_series_is_refused_and_rebirths_do_not_add_up() -> None:
    core = _core(max_series=6)
    _nbirth(core)  # bdSeq, N0
    _dbirth(core, "a", 2, 1)
    for seq in (2, 3, 4):
        _dbirth(core, "a", 2, seq)  # rebirths replace, they do not add
    assert core.health()["series"] == 4
    out = _dbirth(core, "b", 3, 5)
    assert _status(out)["degraded"] == {
        "g/edge1/b": "too_many_series: DBIRTH of 3 metrics would make 7 series, more than host.max_series=6"
    }
    assert core.counters.rejected["too_many_series"] == 1
    assert _values(_dbirth(core, "b", 2, 6)) == [0.0, 1.0]
    assert core.health()["series"] == 6
    assert core.health()["nodes_degraded"] == 0


async def test_the_running_host_refuses_a_big_birth_and_serves_the_other_node(tmp_path: Path) -> None:
    """``host.max_metrics_per_birth`` reaches the host: a real broker, two raw edge nodes, the real host."""
    settings = HostSection(host_id="hb", groups=[_GROUP], max_metrics_per_birth=50, health_interval_s=0.1)
    async with start_broker(tmp_path) as broker:
        host = SparkplugHost(settings=settings, plant=plant_for("acme", _GROUP, _NODE), clients=local_clients(broker))
        async with host, asyncio.TaskGroup() as tasks:
            runner = tasks.create_task(host.run(), name="test.host")
            await host.wait_ready()
            try:
                async with (
                    edge_and_watcher(str(broker.url), _GROUP, "big", ["acme/#"]) as (big, watcher),
                    edge_and_watcher(str(broker.url), _GROUP, _NODE, ["acme/hub/#"]) as (good, _),
                ):
                    big.nbirth([metric(f"M{i}", float(i), DOUBLE) for i in range(60)])
                    good.nbirth([metric("Uptime", 7, INT64)])
                    await until(lambda: watcher.json(f"{_LINE}/data/Uptime") is not None, what="the good node served")
                    status = f"acme/hub/host/nodes/{_GROUP}/big"
                    await until(lambda: watcher.json(status) is not None, what="the big node's status")
                    assert watcher.json(status)["degraded"] == {  # type: ignore[index]
                        f"{_GROUP}/big": "birth_too_large: NBIRTH has 61 metrics, more than"
                        " host.max_metrics_per_birth=50"
                    }
                    health = host.core.health()
                    assert (health["nodes_degraded"], health["degraded"]) == (1, [f"{_GROUP}/big"])
                    assert host.core.counters.rejected["birth_too_large"] == 1
                    assert not any("/big/" in t for t in _topics(watcher))  # nothing of it republished
            finally:
                runner.cancel()


def _topics(watcher: Watcher) -> list[str]:
    with watcher.lock:
        return list(watcher.last)
