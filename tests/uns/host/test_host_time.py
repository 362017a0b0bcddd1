"""Time only moves forward in what the host retains: deaths are stamped when the hub learns of them, never
before the value they mark, a birth after them never before its stale mark, and a live sample older than the held
one goes to history without replacing it.

The host's pure core, fed the bytes a third-party edge node sends and the hub's clock.
"""

from __future__ import annotations

import orjson
import pytest

from tests.fixtures.hub import plant_for
from tests.uns.host.raw_edge import DOUBLE, INT64, metric, payload, read_at
from uns.host.awaited_births import DBIRTH_GRACE_MS
from uns.host.bounds import HostBounds
from uns.host.core import HostCore
from uns.mqtt.types import Message
from uns.sparkplug import sparkplug_b_pb2 as pb

_GROUP, _NODE = "g", "edge1"
_LINE = "acme/dallas/packaging/line1"
_TEMP = f"{_LINE}/filler/data/Temp"
_UPTIME = f"{_LINE}/data/Uptime"
_T0 = 1_764_000_000_000
_DAY = 86_400_000


def _core(bounds: HostBounds | None = None) -> HostCore:
    return HostCore(plant=plant_for("acme", _GROUP, _NODE), bounds=bounds)


def _topic(kind: str, device: str | None = None) -> str:
    return f"spBv1.0/{_GROUP}/{kind}/{_NODE}" + (f"/{device}" if device else "")


def _born(core: HostCore, at: int) -> int:
    """NBIRTH (Uptime) and DBIRTH (Temp = 20.0) stamped ``at``; returns the next seq."""
    core.handle(_topic("NBIRTH"), payload([metric("bdSeq", 0, INT64), read_at(metric("Uptime", 1, INT64), at)], 0), at)
    core.handle(_topic("DBIRTH", "filler"), payload([read_at(metric("Temp", 20.0, DOUBLE, alias=1), at)], 1), at)
    return 2


def _temp(core: HostCore, seq: int, value: float, ts: int, now: int) -> list[Message]:
    return core.handle(
        _topic("DDATA", "filler"), payload([read_at(metric("Temp", value, DOUBLE, alias=1), ts)], seq), now
    )


def _on(out: list[Message], topic: str) -> list[tuple[dict[str, object], bool]]:
    return [(orjson.loads(m.payload), m.retain) for m in out if m.topic == topic]


def _stamped(out: list[Message], topic: str) -> list[tuple[object, object, int, bool]]:
    """(value, quality, timestamp ms, retained) of each envelope on ``topic``."""
    return [(env["value"], env["quality"], env["timestamp_ms"], retained) for env, retained in _on(out, topic)]  # type: ignore[misc]


def _rebirth(core: HostCore, read_ms: int, now: int, bd_seq: int = 1) -> list[Message]:
    """NBIRTH (Uptime = 2) and DBIRTH (Temp = 21.0), each metric read at ``read_ms``, sent and received at ``now``."""
    out = core.handle(
        _topic("NBIRTH"),
        payload([metric("bdSeq", bd_seq, INT64), read_at(metric("Uptime", 2, INT64), read_ms)], 0, timestamp_ms=now),
        now,
    )
    return out + _dbirth(core, read_ms, now, seq=1)


def _dbirth(
    core: HostCore, read_ms: int, now: int, seq: int, *extra: pb.Payload.Metric, sent_ms: int | None = None
) -> list[Message]:
    """DBIRTH of Temp = 21.0 read at ``read_ms`` (and ``extra``), sent at ``sent_ms`` (the payload's time; default
    ``now``: the edge's clock and the hub's agree), received at ``now``."""
    body = [read_at(metric("Temp", 21.0, DOUBLE, alias=1), read_ms), *extra]
    sent = now if sent_ms is None else sent_ms
    return core.handle(_topic("DBIRTH", "filler"), payload(body, seq, timestamp_ms=sent), now)


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
        _topic("DBIRTH", "filler"),
        payload([read_at(metric("Temp", 21.0, DOUBLE, alias=1), _T0 + 2_400)], 1),
        _T0 + 3_000,
    )
    assert [(env["value"], env["quality"], retained) for env, retained in _on(out, _TEMP)] == [(21.0, "good", True)]


@pytest.mark.parametrize(
    ("last_ms", "death_now", "read_ms", "birth_now", "temp_ms"),
    [
        # Temp's stale mark: max(death_now, last_ms + 1); its birth, sent at birth_now, is stamped max(birth_now,
        # mark + 1) unless read after the mark
        pytest.param(_T0 + 5_000, _T0 + 10_000, _T0 + 4_000, _T0 + 20_000, _T0 + 20_000, id="read-before-the-death"),
        pytest.param(_T0 + 5_000, _T0 + 10_000, _T0 + 10_000, _T0 + 20_000, _T0 + 20_000, id="read-at-the-mark"),
        pytest.param(_T0 + 5_000, _T0 + 10_000, _T0 + 10_001, _T0 + 20_000, _T0 + 10_001, id="read-after-the-mark"),
        pytest.param(_T0 + 30_000, _T0 + 10_000, _T0 + 15_000, _T0 + 20_000, _T0 + 30_002, id="mark-ahead-of-the-hub"),
    ],
)
def test_a_birth_after_an_ndeath_is_stamped_after_the_stale_marks(
    last_ms: int, death_now: int, read_ms: int, birth_now: int, temp_ms: int
) -> None:
    core = _core()
    seq = _born(core, _T0)
    _temp(core, seq, 25.0, last_ms, last_ms)
    died = core.handle(_topic("NDEATH"), _ndeath(_T0), death_now)
    assert _stamped(died, _TEMP) == [(25.0, "stale", max(death_now, last_ms + 1), True)]
    out = _rebirth(core, read_ms, birth_now)
    assert _stamped(out, _TEMP) == [(21.0, "good", temp_ms, True)]
    # Uptime's mark is death_now (its value was read at _T0): its birth is stamped after it the same way
    uptime_ms = read_ms if read_ms > death_now else max(birth_now, death_now + 1)
    assert _stamped(out, _UPTIME) == [(2, "good", uptime_ms, True)]
    # the birth is the value the host holds now: a DATA read before the birth's value is history, not the retained
    # latest (one read after it and before the birth's stamp is newer: see test_a_reading_on_its_way_...)
    later = _temp(core, 2, 22.0, read_ms - 1, birth_now + 100)
    assert _stamped(later, _TEMP) == [(22.0, "good", read_ms - 1, False)]


def test_a_birth_after_a_ddeath_is_stamped_after_the_stale_mark_a_newer_or_new_metric_keeps_its_time() -> None:
    core = _core()
    seq = _born(core, _T0)
    _temp(core, seq, 25.0, _T0 + 5_000, _T0 + 5_000)
    core.handle(_topic("DDEATH", "filler"), payload([], seq + 1), _T0 + 10_000)
    out = _dbirth(core, _T0 + 2_000, _T0 + 20_000, seq + 2, read_at(metric("Speed", 3.0, DOUBLE, alias=2), _T0 + 1_000))
    assert _stamped(out, _TEMP) == [(21.0, "good", _T0 + 20_000, True)]  # read before its mark (_T0 + 10_000)
    speed = f"{_LINE}/filler/data/Speed"
    assert _stamped(out, speed) == [(3.0, "good", _T0 + 1_000, True)]  # not in the last birth: no mark of its own
    # the next death and birth: marked again; the edge's clock now ahead of the hub's, Temp read after its mark
    core.handle(_topic("DDEATH", "filler"), payload([], seq + 3), _T0 + 30_000)
    backfill = read_at(metric("Speed", 2.0, DOUBLE, alias=2), _T0 + 500)
    backfill.is_historical = True  # not live: history at its own time, whatever the mark
    out = _dbirth(core, _T0 + 40_000, _T0 + 35_000, seq + 4, backfill)
    assert _stamped(out, _TEMP) == [(21.0, "good", _T0 + 40_000, True)]
    assert _stamped(out, speed) == [(2.0, "good", _T0 + 500, False)]


@pytest.mark.parametrize("marked_by", ["first-data", "grace"])
def test_a_late_dbirth_of_a_device_not_born_again_in_its_node_s_session_is_stamped_after_the_mark(
    marked_by: str,
) -> None:
    core = _core()
    seq = _born(core, _T0)
    _temp(core, seq, 25.0, _T0 + 5_000, _T0 + 5_000)
    core.handle(_topic("NBIRTH"), payload([metric("bdSeq", 0, INT64)], 0), _T0 + 10_000)  # a rebirth: no DBIRTH
    if marked_by == "first-data":
        marked = core.handle(_topic("NDATA"), payload([metric("Uptime", 3, INT64)], 1), _T0 + 11_000)
        mark = _T0 + 11_000
    else:
        mark = _T0 + 10_000 + DBIRTH_GRACE_MS
        marked = core.tick(mark)
    assert _stamped(marked, _TEMP) == [(25.0, "stale", mark, True)]
    out = _dbirth(core, _T0 + 6_000, _T0 + 40_000, 2)  # slower than the wait: read long before the mark
    assert _stamped(out, _TEMP) == [(21.0, "good", _T0 + 40_000, True)]


def test_a_birth_after_a_refused_birth_is_stamped_after_the_marks_though_the_slots_were_freed() -> None:
    core = _core(HostBounds(max_metrics_per_birth=2))
    seq = _born(core, _T0)
    _temp(core, seq, 25.0, _T0 + 5_000, _T0 + 5_000)
    too_large = [metric(f"M{i}", float(i), DOUBLE) for i in range(3)]
    refused = _dbirth(core, _T0 + 6_000, _T0 + 10_000, seq + 1, *too_large)
    assert _stamped(refused, _TEMP) == [(25.0, "stale", _T0 + 10_000, True)]
    out = _dbirth(core, _T0 + 6_000, _T0 + 20_000, seq + 2)
    assert _stamped(out, _TEMP) == [(21.0, "good", _T0 + 20_000, True)]


@pytest.mark.parametrize(
    ("sent_ms", "temp_ms"),
    [
        # sent 8 s before the hub got it (a slow link, a queue): the edge said the value is current then
        pytest.param(_T0 + 12_000, _T0 + 12_000, id="sent-before-received"),
        # the edge's clock behind the hub's by more than the outage: never before the mark
        pytest.param(_T0 + 9_000, _T0 + 10_001, id="sent-before-the-mark"),
    ],
)
def test_a_birth_after_stale_marks_is_stamped_when_the_edge_sent_it_not_when_the_hub_got_it(
    sent_ms: int, temp_ms: int
) -> None:
    core = _core()
    seq = _born(core, _T0)
    _temp(core, seq, 25.0, _T0 + 5_000, _T0 + 5_000)
    core.handle(_topic("DDEATH", "filler"), payload([], seq + 1), _T0 + 10_000)  # Temp's mark: _T0 + 10_000
    out = _dbirth(core, _T0 + 2_000, _T0 + 20_000, seq + 2, sent_ms=sent_ms)
    assert _stamped(out, _TEMP) == [(21.0, "good", temp_ms, True)]
    # the edge's heartbeat of the unchanged value, stamped at its birth (bridges/edge): the same millisecond as
    # the value held, so it is the latest again (retained), not an older value counted out of order
    beat = _temp(core, seq + 3, 21.0, temp_ms, _T0 + 21_000)
    assert _stamped(beat, _TEMP) == [(21.0, "good", temp_ms, True)]
    assert core.counters.out_of_order == 0


def test_a_birth_sent_after_the_hub_got_it_is_stamped_when_the_hub_got_it() -> None:
    # the gateway's clock 10 min ahead of the hub's, its metrics read by a source whose clock agrees with the hub's
    # (an OPC UA server's SourceTimestamp): the payload's time is not when the birth was sent, it had come by then
    core = _core()
    seq = _born(core, _T0)
    _temp(core, seq, 25.0, _T0 + 5_000, _T0 + 5_000)
    core.handle(_topic("DDEATH", "filler"), payload([], seq + 1), _T0 + 10_000)  # Temp's mark: _T0 + 10_000
    out = _dbirth(core, _T0 + 2_000, _T0 + 20_000, seq + 2, sent_ms=_T0 + 620_000)
    assert _stamped(out, _TEMP) == [(21.0, "good", _T0 + 20_000, True)]  # not 10 min in the hub's future
    # the source's next reading, 5 s later, is the value held: retained, not older than the birth's stamp
    later = _temp(core, seq + 3, 22.0, _T0 + 25_000, _T0 + 25_000)
    assert _stamped(later, _TEMP) == [(22.0, "good", _T0 + 25_000, True)]
    assert core.counters.out_of_order == 0


def test_a_rebirth_of_a_live_node_keeps_the_times_its_metrics_were_read() -> None:
    core = _core()
    seq = _born(core, _T0)
    _temp(core, seq, 25.0, _T0 + 5_000, _T0 + 5_000)
    out = _rebirth(core, _T0 + 1_000, _T0 + 20_000, bd_seq=0)  # no death: nothing marked stale
    assert _stamped(out, _TEMP) == [(21.0, "good", _T0 + 1_000, True)]
    assert _stamped(out, _UPTIME) == [(2, "good", _T0 + 1_000, True)]


def test_a_reading_on_its_way_while_a_restamped_birth_was_sent_is_the_current_value_after_it() -> None:
    # Temp read at _T0 + 2_000 before the death; back in the outage it changed, read at _T0 + 15_000, and that
    # reading came just after the DBIRTH (sent at _T0 + 20_000) that still carried the old one: it is newer
    core = _core()
    seq = _born(core, _T0)
    _temp(core, seq, 25.0, _T0 + 2_000, _T0 + 2_000)
    core.handle(_topic("DDEATH", "filler"), payload([], seq + 1), _T0 + 10_000)  # Temp's mark: _T0 + 10_000
    born = _dbirth(core, _T0 + 2_000, _T0 + 20_000, seq + 2)
    assert _stamped(born, _TEMP) == [(21.0, "good", _T0 + 20_000, True)]
    first = _temp(core, seq + 3, 23.0, _T0 + 15_000, _T0 + 20_050)
    assert _stamped(first, _TEMP) == [(23.0, "good", _T0 + 20_001, True)]  # current, just after the birth's
    second = _temp(core, seq + 4, 24.0, _T0 + 16_000, _T0 + 20_060)  # the next one on its way: after that
    assert _stamped(second, _TEMP) == [(24.0, "good", _T0 + 20_002, True)]
    assert core.counters.out_of_order == 0
    # a reading not newer than the last one taken so is out of order, as any
    old = _temp(core, seq + 5, 19.0, _T0 + 16_000, _T0 + 20_070)
    assert _stamped(old, _TEMP) == [(19.0, "good", _T0 + 16_000, False)]
    assert core.counters.out_of_order == 1
    # a live reading after the stamps: as always; then one from before it is out of order, restamped birth or not
    live = _temp(core, seq + 6, 26.0, _T0 + 30_000, _T0 + 30_000)
    assert _stamped(live, _TEMP) == [(26.0, "good", _T0 + 30_000, True)]
    late = _temp(core, seq + 7, 27.0, _T0 + 17_000, _T0 + 30_010)
    assert _stamped(late, _TEMP) == [(27.0, "good", _T0 + 17_000, False)]
    assert core.counters.out_of_order == 2


def test_a_reading_older_than_what_a_restamped_birth_carried_is_out_of_order() -> None:
    core = _core()
    seq = _born(core, _T0)
    _temp(core, seq, 25.0, _T0 + 2_000, _T0 + 2_000)
    core.handle(_topic("DDEATH", "filler"), payload([], seq + 1), _T0 + 10_000)
    _dbirth(core, _T0 + 2_000, _T0 + 20_000, seq + 2)  # Temp read at _T0 + 2_000, stamped _T0 + 20_000
    old = _temp(core, seq + 3, 22.0, _T0 + 1_500, _T0 + 20_050)  # read before the birth's value: older
    assert _stamped(old, _TEMP) == [(22.0, "good", _T0 + 1_500, False)]
    assert core.counters.out_of_order == 1


def test_readings_read_after_a_restamped_birth_was_sent_keep_their_time_though_the_edge_clock_is_behind() -> None:
    # the edge's clock runs a minute behind the hub's: the DBIRTH it sends 10 s after the DDEATH's mark says it is
    # _T0 - 40_000, so it is stamped at the mark (_T0 + 10_001); a reading on its way (read before the birth was
    # sent) is the current value just after it, but those read after it are not in flight: each keeps its own time,
    # history only until the edge's time passes the stamp, as before; not all stamped 1 ms apart after the birth
    behind = 60_000
    core = _core()
    seq = _born(core, _T0 - behind)
    _temp(core, seq, 25.0, _T0 + 2_000 - behind, _T0 + 2_000)
    core.handle(_topic("DDEATH", "filler"), payload([], seq + 1), _T0 + 10_000)  # Temp's mark: _T0 + 10_000
    sent = _T0 + 20_000 - behind
    born = _dbirth(core, _T0 + 2_000 - behind, _T0 + 20_000, seq + 2, sent_ms=sent)  # Temp's last change
    assert _stamped(born, _TEMP) == [(21.0, "good", _T0 + 10_001, True)]
    in_flight = _temp(core, seq + 3, 22.0, sent - 1, _T0 + 20_010)
    assert _stamped(in_flight, _TEMP) == [(22.0, "good", _T0 + 10_002, True)]
    after = [_temp(core, seq + 3 + i, 30.0 + i, sent + i * 1_000, _T0 + 20_000 + i * 1_000) for i in (1, 2, 3)]
    assert [_stamped(out, _TEMP) for out in after] == [[(30.0 + i, "good", sent + i * 1_000, False)] for i in (1, 2, 3)]
    assert core.counters.out_of_order == 3
    # the edge's time past the stamps: current again, as any
    caught_up = _temp(core, seq + 7, 40.0, _T0 + 10_003, _T0 + 70_003)
    assert _stamped(caught_up, _TEMP) == [(40.0, "good", _T0 + 10_003, True)]
