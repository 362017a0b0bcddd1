"""A host starting reads the stale marks back from its retained node status (``uns.host.seeding``): the host's
pure core, seeded with the status documents another core (the host before the restart) published.
"""

from __future__ import annotations

import logging

import orjson
import pytest

from tests.fixtures.hub import plant_for
from tests.uns.host.raw_edge import DOUBLE, INT64, metric, payload, read_at
from uns.host.bounds import HostBounds
from uns.host.core import HostCore
from uns.mqtt.types import Message

_GROUP, _NODE = "g", "edge1"
_LINE = "acme/dallas/packaging/line1"
_TEMP = f"{_LINE}/filler/data/Temp"
_UPTIME = f"{_LINE}/data/Uptime"
_STATUS = f"acme/hub/host/nodes/{_GROUP}/{_NODE}"
_T0 = 1_764_000_000_000


def _core(bounds: HostBounds | None = None) -> HostCore:
    return HostCore(plant=plant_for("acme", _GROUP, _NODE), bounds=bounds)


def _topic(kind: str, device: str | None = None) -> str:
    return f"spBv1.0/{_GROUP}/{kind}/{_NODE}" + (f"/{device}" if device else "")


def _statuses(out: list[Message]) -> tuple[tuple[str, bytes], ...]:
    """The retained node status documents in ``out``, the last of each topic (what the broker keeps)."""
    kept = {m.topic: m.payload for m in out if m.topic.startswith("acme/hub/host/nodes/") and m.retain}
    return tuple(kept.items())


def _birth(core: HostCore, read_ms: int, now: int, bd_seq: int = 0) -> list[Message]:
    """NBIRTH (Uptime) and DBIRTH (Temp = 20.0), each metric read at ``read_ms``, sent and received at ``now``."""
    node = payload(
        [read_at(metric("bdSeq", bd_seq, INT64), read_ms), read_at(metric("Uptime", 1, INT64), read_ms)],
        0,
        timestamp_ms=now,
    )
    out = core.handle(_topic("NBIRTH"), node, now)
    device = payload([read_at(metric("Temp", 20.0, DOUBLE, alias=1), read_ms)], 1, timestamp_ms=now)
    return out + core.handle(_topic("DBIRTH", "filler"), device, now)


def _stamped(out: list[Message], topic: str) -> list[tuple[object, object, object]]:
    """(value, quality, timestamp ms) of each envelope on ``topic``."""
    envs = [orjson.loads(m.payload) for m in out if m.topic == topic]
    return [(env["value"], env["quality"], env["timestamp_ms"]) for env in envs]


def test_a_node_dead_at_the_restart_is_born_after_its_marks() -> None:
    before = _core()
    out = _birth(before, _T0, _T0)
    out += before.handle(_topic("NDEATH"), payload([metric("bdSeq", 0, INT64)], None, timestamp_ms=_T0), _T0 + 5_000)
    status = dict(_statuses(out))
    assert orjson.loads(status[_STATUS])["stale_ms"] == _T0 + 5_000
    assert orjson.loads(status[_STATUS])["devices"]["filler"]["stale_ms"] == _T0 + 5_000

    after = _core()
    assert after.seed(_statuses(out), _T0 + 9_000) == 2
    ((key, node),) = after.nodes.items()
    assert (key, node.online, node.births, node.stale_ms, len(node.slots)) == (
        (_GROUP, _NODE),
        False,
        0,
        _T0 + 5_000,
        0,
    )
    assert node.devices["filler"].stale_ms == _T0 + 5_000
    # DATA before a birth is refused as on any start: the seeded node is offline
    data = payload([read_at(metric("Temp", 21.0, DOUBLE, alias=1), _T0 + 9_000)], 5, timestamp_ms=_T0 + 9_000)
    refused = after.handle(_topic("DDATA", "filler"), data, _T0 + 9_000)
    assert [m.topic for m in refused] == [f"spBv1.0/{_GROUP}/NCMD/{_NODE}"]  # Node Control/Rebirth
    assert after.counters.rejected == {"data_before_birth": 1}
    # the same tags, read before the mark, sent before it (an edge clock behind the hub's): the mark + 1 ms
    born = _birth(after, _T0, _T0 + 4_000, bd_seq=1)
    assert _stamped(born, _TEMP) == [(20.0, "good", _T0 + 5_001)]
    assert _stamped(born, _UPTIME) == [(1, "good", _T0 + 5_001)]
    assert (after.counters.births, after.counters.deaths, after.counters.out_of_order) == (2, 0, 0)
    assert orjson.loads(dict(_statuses(born))[_STATUS])["stale_ms"] is None


def test_a_node_online_at_the_restart_is_not_seeded_but_its_dead_device_is() -> None:
    before = _core()
    out = _birth(before, _T0, _T0)
    out += before.handle(_topic("DDEATH", "filler"), payload([], 2, timestamp_ms=_T0), _T0 + 5_000)
    after = _core()
    assert after.seed(_statuses(out), _T0 + 9_000) == 1
    node = after.nodes[_GROUP, _NODE]
    assert (node.online, node.stale_ms, node.devices["filler"].stale_ms) == (False, None, _T0 + 5_000)
    born = _birth(after, _T0, _T0 + 4_000, bd_seq=1)
    assert _stamped(born, _UPTIME) == [(1, "good", _T0)]  # no mark: as sent
    assert _stamped(born, _TEMP) == [(20.0, "good", _T0 + 5_001)]

    online = _core()
    assert online.seed(_statuses(_birth(_core(), _T0, _T0)), _T0 + 9_000) == 0
    assert online.nodes == {}


def test_a_node_the_host_knows_keeps_its_own_marks_and_is_not_counted_seeded() -> None:
    before = _core()
    out = _birth(before, _T0, _T0)
    out += before.handle(_topic("NDEATH"), payload([metric("bdSeq", 0, INT64)], None, timestamp_ms=_T0), _T0 + 5_000)
    known = _core()
    _birth(known, _T0 + 6_000, _T0 + 6_000)  # online, its devices born: nothing of the older statuses applies
    assert known.seed(_statuses(out), _T0 + 9_000) == 0
    node = known.nodes[_GROUP, _NODE]
    assert (node.online, node.stale_ms, node.devices["filler"].stale_ms) == (True, None, None)


@pytest.mark.parametrize(
    ("topic", "document", "says"),
    [
        pytest.param(_STATUS, b"{not json", "unexpected character", id="not-json"),
        pytest.param(_STATUS, b"[]", "ignored: the document: not an object", id="not-an-object"),
        pytest.param(
            _STATUS, b'{"online": true, "devices": {"filler": 5}}', "devices.filler: not an object", id="device-entry"
        ),
        pytest.param(_STATUS, b'{"online": "no", "stale_ms": 5}', "online: not true or false", id="online"),
        pytest.param(_STATUS, b'{"online": false, "stale_ms": "5"}', "stale_ms: not a time", id="stale-ms"),
        pytest.param(
            _STATUS,
            b'{"online": true, "devices": {"filler": {"online": false, "stale_ms": -1}}}',
            "devices.filler.stale_ms: not a time",
            id="device-stale-ms",
        ),
        pytest.param(f"acme/hub/host/nodes/{_GROUP}", b'{"online": false, "stale_ms": 5}', "not acme/hub", id="topic"),
        pytest.param("acme/hub/host/nodes/g/e+1", b'{"online": false, "stale_ms": 5}', "+", id="node-id"),
    ],
)
def test_a_malformed_status_document_is_counted_logged_and_ignored(
    topic: str, document: bytes, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = ("acme/hub/host/nodes/g/edge2", b'{"online": false, "stale_ms": 7, "devices": {}}')
    core = _core()
    with caplog.at_level(logging.WARNING, logger="uns.host"):
        assert core.seed(((topic, document), good), _T0) == 1
    assert core.counters.rejected == {"bad_status": 1}
    ((record,),) = [[r for r in caplog.records if "bad_status" in r.getMessage()]]
    assert topic in record.getMessage()
    assert says in record.getMessage()
    assert [(key, node.stale_ms) for key, node in core.nodes.items()] == [(("g", "edge2"), 7)]


def test_seeding_keeps_to_the_bounds_and_counts_nothing() -> None:
    docs = tuple(
        (
            f"acme/hub/host/nodes/g/edge{n}",
            orjson.dumps(
                {
                    "online": False,
                    "stale_ms": 7,
                    "devices": {f"d{d}": {"online": False, "stale_ms": 8} for d in range(3)},
                }
            ),
        )
        for n in range(3)
    )
    core = _core(HostBounds(max_nodes=2, max_devices_per_node=2))
    assert core.seed(docs, _T0) == 6  # two nodes, two devices each
    assert sorted(core.nodes) == [("g", "edge0"), ("g", "edge1")]
    assert all(sorted(node.devices) == ["d0", "d1"] for node in core.nodes.values())
    assert core.counters.rejected == {}
    assert core.health()["nodes_online"] == 0
