"""Time only moves forward in what the host retains: deaths are stamped when the hub learns of them, never
before the value they mark, and a live sample older than the held one goes to history without replacing it.

The host's pure core, fed the bytes a third-party edge node sends and the hub's clock.
"""

from __future__ import annotations

import orjson
import pytest

from tests.fixtures.hub import plant_for
from tests.uns.host.raw_edge import DOUBLE, INT64, metric, payload
from uns.host.core import HostCore
from uns.mqtt.types import Message
from uns.sparkplug import sparkplug_b_pb2 as pb

_GROUP, _NODE = "g", "edge1"
_LINE = "acme/dallas/packaging/line1"
_TEMP = f"{_LINE}/filler/data/Temp"
_UPTIME = f"{_LINE}/data/Uptime"
_T0 = 1_764_000_000_000
_DAY = 86_400_000


def _core() -> HostCore:
    return HostCore(plant=plant_for("acme", _GROUP, _NODE))


def _at(m: pb.Payload.Metric, ts: int) -> pb.Payload.Metric:
    m.timestamp = ts
    return m


def _topic(kind: str, device: str | None = None) -> str:
    return f"spBv1.0/{_GROUP}/{kind}/{_NODE}" + (f"/{device}" if device else "")


def _born(core: HostCore, at: int) -> int:
    """NBIRTH (Uptime) and DBIRTH (Temp = 20.0) stamped ``at``; returns the next seq."""
    core.handle(_topic("NBIRTH"), payload([metric("bdSeq", 0, INT64), _at(metric("Uptime", 1, INT64), at)], 0), at)
    core.handle(_topic("DBIRTH", "filler"), payload([_at(metric("Temp", 20.0, DOUBLE, alias=1), at)], 1), at)
    return 2


def _temp(core: HostCore, seq: int, value: float, ts: int, now: int) -> list[Message]:
    return core.handle(_topic("DDATA", "filler"), payload([_at(metric("Temp", value, DOUBLE, alias=1), ts)], seq), now)


def _on(out: list[Message], topic: str) -> list[tuple[dict[str, object], bool]]:
    return [(orjson.loads(m.payload), m.retain) for m in out if m.topic == topic]


def _ndeath(will_ms: int | None) -> bytes:
    if will_ms is not None:
        return payload([metric("bdSeq", 0, INT64)], None, timestamp_ms=will_ms)
    will = pb.Payload()  # no timestamp at all
    will.metrics.append(metric("bdSeq", 0, INT64))
    return will.SerializeToString()


@pytest.mark.parametrize(
    ("will_ms", "now", "last_ms", "stale_ms"),
    [
        pytest.param(_T0 - _DAY, _T0 + 60_000, _T0 + 5_000, _T0 + 60_000, id="will-registered-a-day-ago"),
        pytest.param(_T0, _T0 + 60_000, _T0 + 5_000, _T0 + 60_000, id="will-registered-at-connect"),
        pytest.param(None, _T0 + 60_000, _T0 + 5_000, _T0 + 60_000, id="will-without-timestamp"),
        pytest.param(_T0, _T0 + 4_000, _T0 + 5_000, _T0 + 5_001, id="edge-clock-ahead-of-the-hub"),
        pytest.param(_T0, _T0 + 5_000, _T0 + 5_000, _T0 + 5_001, id="same-millisecond"),
    ],
)
def test_ndeath_is_stamped_when_the_hub_learns_of_it_and_after_the_value_it_marks(
    will_ms: int | None, now: int, last_ms: int, stale_ms: int
) -> None:
    core = _core()
    seq = _born(core, _T0)
    _temp(core, seq, 25.0, last_ms, _T0 + 5_000)
    out = core.handle(_topic("NDEATH"), _ndeath(will_ms), now)
    assert _on(out, _TEMP) == [
        (
            {
                "value": 25.0,
                "timestamp_ms": stale_ms,
                "quality": "stale",
                "datatype": "Double",
                "unit": "degC",
                "source": f"{_GROUP}/{_NODE}/filler",
            },
            True,
        )
    ]
    # the node's own metric was last stamped at birth: the death time is simply "now" for it
    assert _on(out, _UPTIME)[0][0]["timestamp_ms"] == max(now, _T0 + 1)
    assert _on(out, _UPTIME)[0][0]["quality"] == "stale"


@pytest.mark.parametrize(
    ("ddeath_ms", "now", "stale_ms"),
    [
        pytest.param(_T0 - _DAY, _T0 + 9_000, _T0 + 9_000, id="payload-stamped-long-before"),
        pytest.param(_T0 + 3_000, _T0 + 4_000, _T0 + 5_001, id="edge-clock-ahead-of-the-hub"),
    ],
)
def test_ddeath_is_stamped_when_the_hub_learns_of_it(ddeath_ms: int, now: int, stale_ms: int) -> None:
    core = _core()
    seq = _born(core, _T0)
    _temp(core, seq, 25.0, _T0 + 5_000, _T0 + 5_000)
    out = core.handle(_topic("DDEATH", "filler"), payload([], seq + 1, timestamp_ms=ddeath_ms), now)
    ((stale, retained),) = _on(out, _TEMP)
    assert (stale["value"], stale["quality"], stale["timestamp_ms"], retained) == (25.0, "stale", stale_ms, True)
    assert _on(out, _UPTIME) == []  # the node lives on


def test_older_live_data_goes_to_history_but_never_replaces_the_retained_value() -> None:
    core = _core()
    seq = _born(core, _T0)
    first = _temp(core, seq, 30.0, _T0 + 2_000, _T0 + 2_000)
    late = _temp(core, seq + 1, 29.0, _T0 + 1_000, _T0 + 2_100)  # sampled before the one already held
    same = _temp(core, seq + 2, 31.0, _T0 + 2_000, _T0 + 2_200)  # same millisecond: the newer message wins
    assert [(env["value"], retained) for env, retained in _on(first + late + same, _TEMP)] == [
        (30.0, True),
        (29.0, False),  # published for history and live subscribers, not retained
        (31.0, True),
    ]
    assert core.counters.out_of_order == 1
    assert core.health()["out_of_order"] == 1
    # what the host holds is still the newest sample: a death marks 31.0, not 29.0
    out = core.handle(_topic("NDEATH"), _ndeath(_T0), _T0 + 2_500)
    ((stale, _),) = _on(out, _TEMP)
    assert (stale["value"], stale["timestamp_ms"]) == (31.0, _T0 + 2_500)
    # a new session starts afresh: its birth is the latest again, even if the edge's clock is behind ours
    out = core.handle(_topic("NBIRTH"), payload([metric("bdSeq", 1, INT64)], 0), _T0 + 3_000)
    out += core.handle(
        _topic("DBIRTH", "filler"), payload([_at(metric("Temp", 21.0, DOUBLE, alias=1), _T0 + 2_400)], 1), _T0 + 3_000
    )
    assert [(env["value"], env["quality"], retained) for env, retained in _on(out, _TEMP)] == [(21.0, "good", True)]
