"""The triggers' pure core: hysteresis, minimum duration, state changes, MES events, schedules in a time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import TypeAdapter

from model.rules import Trigger
from uns.rules.triggers import Firing, Watch, next_cron, subscriptions

_TRIGGER: TypeAdapter[Trigger] = TypeAdapter(Trigger)
TOPIC = "acme/dallas/pack/line1/filler/data/Temp"


def _watch(**trigger: object) -> Watch:
    return Watch(_TRIGGER.validate_python(trigger))


def _feed(watch: Watch, value: object, now_s: float, topic: str = TOPIC) -> list[str]:
    firings = watch.on_message(topic, orjson.dumps({"value": value}), now_s=now_s, now_ms=int(now_s * 1000))
    return [f.phase for f in firings]


def test_value_hysteresis_keeps_the_alarm_until_the_value_is_back_past_the_band() -> None:
    watch = _watch(kind="value", topic=TOPIC, above=80, hysteresis=5)
    assert _feed(watch, 79, 0) == []
    assert _feed(watch, 81, 1) == ["fire"]
    assert _feed(watch, 82, 2) == []  # still active: no second firing
    assert _feed(watch, 77, 3) == []  # below the limit, inside the band
    assert _feed(watch, 74.9, 4) == ["clear"]
    assert _feed(watch, 80, 5) == []  # not above 80
    assert _feed(watch, 80.5, 6) == ["fire"]


def test_value_below_limit_with_hysteresis() -> None:
    watch = _watch(kind="value", topic=TOPIC, below=10, hysteresis=2)
    assert _feed(watch, 9, 0) == ["fire"]
    assert _feed(watch, 11.5, 1) == []
    assert _feed(watch, 12.5, 2) == ["clear"]


def test_value_minimum_duration_fires_on_the_tick_after_it_and_not_for_a_short_excursion() -> None:
    watch = _watch(kind="value", topic=TOPIC, above=80, for_s=10)
    assert _feed(watch, 90, 0) == []
    assert watch.next_due_s() == 10
    assert [f.phase for f in watch.on_tick(9.9)] == []
    assert _feed(watch, 70, 9.95) == []  # went away before 10 s: never fired, so no clear either
    assert watch.on_tick(20) == []
    assert _feed(watch, 90, 30) == []
    fired = watch.on_tick(40)
    assert [(f.phase, f.value, f.path) for f in fired] == [("fire", 90, "acme/dallas/pack/line1/filler")]
    assert watch.on_tick(41) == []
    assert _feed(watch, 70, 42) == ["clear"]


def test_value_ignores_null_text_and_nan_and_keeps_topics_apart() -> None:
    watch = _watch(kind="value", topic="acme/+/pack/line1/+/data/Temp", above=80)
    other = "acme/dallas/pack/line1/capper/data/Temp"
    assert _feed(watch, None, 0) == []
    assert _feed(watch, "hot", 0) == []
    assert _feed(watch, 90, 1) == ["fire"]
    assert _feed(watch, 90, 1, topic=other) == ["fire"]
    assert _feed(watch, 10, 2) == ["clear"]
    assert watch.on_message(other, b"not json", now_s=3, now_ms=3000) == []


def test_state_change_fires_on_a_change_to_a_wanted_state_after_its_duration() -> None:
    watch = _watch(kind="state", topic=TOPIC, to=[180000], for_s=120)
    assert _feed(watch, 10000, 0) == []
    assert _feed(watch, 180000, 10) == []
    assert watch.on_tick(129) == []
    fired = watch.on_tick(130)
    assert [(f.phase, f.value, f.previous) for f in fired] == [("fire", 180000, 10000)]
    assert _feed(watch, 180000, 140) == []  # a repeat is no change
    assert _feed(watch, 10000, 150) == ["clear"]


def test_state_any_change_fires_but_not_the_first_value_and_true_is_not_one() -> None:
    watch = _watch(kind="state", topic=TOPIC)
    assert _feed(watch, 1, 0) == []
    assert _feed(watch, True, 1) == ["fire"]  # Boolean true after integer 1 is a change
    assert _feed(watch, True, 2) == []
    assert _feed(watch, "x", 3) == ["clear", "fire"]


def test_state_first_value_counts_when_it_is_a_wanted_state() -> None:
    watch = _watch(kind="state", topic=TOPIC, to=[True])
    assert _feed(watch, True, 0) == ["fire"]


def test_order_completed_on_matching_lines_only() -> None:
    watch = _watch(kind="mes", event="order_completed", path="acme/dallas/+/line1")
    body = {"order_id": "WO-7", "action": "complete", "timestamp_ms": 1}
    firings = watch.on_message("acme/dallas/pack/line1/mes/work_order", orjson.dumps(body), now_s=0, now_ms=5)
    assert [(f.phase, f.value, f.path, f.body) for f in firings] == [("fire", "WO-7", "acme/dallas/pack/line1", body)]
    start = {"order_id": "WO-8", "action": "start"}
    assert watch.on_message("acme/dallas/pack/line1/mes/work_order", orjson.dumps(start), now_s=0, now_ms=5) == []
    assert watch.on_message("acme/dallas/pack/line2/mes/work_order", orjson.dumps(body), now_s=0, now_ms=5) == []


def test_downtime_longer_than_minutes() -> None:
    watch = _watch(kind="mes", event="downtime", path="acme/#", min_minutes=5)
    topic = "acme/dallas/pack/line1/filler/mes/machine_state"

    def state(code: int, now_s: float) -> list[Firing]:
        return watch.on_message(topic, orjson.dumps({"state": code}), now_s=now_s, now_ms=0)

    assert state(180000, 0) == []
    assert state(40000, 100) == []  # another stop code: still down since 0
    assert watch.on_tick(299) == []
    assert [(f.phase, f.path) for f in watch.on_tick(300)] == [("fire", "acme/dallas/pack/line1/filler")]
    assert [f.phase for f in state(10000, 400)] == ["clear"]
    assert state(60000, 500) == []
    assert state(20000, 600) == []  # back to producing inside 5 minutes: nothing
    assert watch.on_tick(10_000) == []


def test_subscriptions() -> None:
    assert subscriptions(_TRIGGER.validate_python({"kind": "topic", "filter": "a/#"})) == ["a/#"]
    assert subscriptions(_TRIGGER.validate_python({"kind": "cron", "schedule": "0 6 * * *"})) == []
    mes = subscriptions(_TRIGGER.validate_python({"kind": "mes", "event": "order_completed"}))
    assert mes[0] == "+/mes/work_order"
    assert mes[-1] == "+/+/+/+/+/mes/work_order"


@pytest.mark.parametrize(
    ("schedule", "timezone", "after", "expected"),
    [
        ("0 6 * * *", "America/Chicago", "2026-12-06T13:00:00+00:00", "2026-12-07T12:00:00+00:00"),
        ("0 6 * * *", "America/Chicago", "2026-07-06T13:00:00+00:00", "2026-07-07T11:00:00+00:00"),  # CDT
        ("0 6 * * *", "UTC", "2026-12-06T05:59:59+00:00", "2026-12-06T06:00:00+00:00"),
        ("*/15 * * * *", "Europe/Berlin", "2026-12-06T10:07:00+00:00", "2026-12-06T10:15:00+00:00"),
        ("0 6 * * 1-5", "Europe/Berlin", "2026-12-04T06:00:00+00:00", "2026-12-07T05:00:00+00:00"),  # Fri -> Mon
        ("0 6 * * *", "UTC", "2026-12-06T06:00:00+00:00", "2026-12-07T06:00:00+00:00"),  # never the same instant
    ],
)
def test_next_cron_in_a_time_zone(schedule: str, timezone: str, after: str, expected: str) -> None:
    got = next_cron(schedule, timezone, datetime.fromisoformat(after))
    assert got == datetime.fromisoformat(expected)
    assert got.tzinfo is not None
    assert got.utcoffset() == UTC.utcoffset(None)


def test_downtime_counts_only_the_state_ranges_given() -> None:
    watch = _watch(kind="mes", event="downtime", min_minutes=2, states=[[180000, 229999]])
    topic = "acme/dallas/pack/line1/filler/mes/machine_state"

    def state(code: int, now_s: float) -> list[str]:
        return [f.phase for f in watch.on_message(topic, orjson.dumps({"state": code}), now_s=now_s, now_ms=0)]

    assert state(40100, 0) == []  # idle: not a fault
    assert watch.on_tick(1000) == []
    assert state(180000, 1000) == []
    assert [f.value for f in watch.on_tick(1120)] == [180000]
    assert state(40100, 1200) == ["clear"]  # idle again: the fault is over
