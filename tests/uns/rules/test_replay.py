"""A rule replayed over given messages: the engine's own trigger and condition, the messages' time as the clock."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from model.rules import Rule
from uns.rules.replay import replay_rule, try_rule

T0 = int(datetime(2026, 3, 7, 0, 0, tzinfo=UTC).timestamp() * 1000)
MIN = 60_000
CELL = "acme/dallas/bottling/line1/filler"


def _rule(trigger: dict[str, object], condition: str | None = None) -> Rule:
    alarm = {"kind": "alarm", "path": "${path}", "name": "x"}
    return Rule.model_validate({"name": "r", "trigger": trigger, "condition": condition, "actions": [alarm]})


def _value(minute: int, value: object, topic: str = f"{CELL}/data/State") -> tuple[int, str, bytes]:
    return T0 + minute * MIN, topic, orjson.dumps({"value": value, "timestamp_ms": T0 + minute * MIN})


def test_a_schedule_fires_at_each_instant_in_its_zone_across_a_dst_change() -> None:
    # New York springs forward on 2026-03-08: 06:00 local is 11:00 UTC before, 10:00 UTC after
    rule = _rule({"kind": "cron", "schedule": "0 6 * * *", "timezone": "America/New_York"})
    result = replay_rule(rule, [], start_ms=T0, end_ms=T0 + 3 * 24 * 60 * MIN, timezone="UTC")
    hours = [datetime.fromtimestamp(f.at_ms / 1000, UTC).strftime("%d %H:%M") for f in result.firings]
    assert (result.fired, hours) == (3, ["07 11:00", "08 10:00", "09 10:00"])


def test_a_state_change_fires_only_after_lasting_for_s() -> None:
    rule = _rule({"kind": "state", "topic": f"{CELL}/data/State", "to": ["Faulted"], "for_s": 120})
    messages = [
        _value(0, "Running"),
        _value(1, "Faulted"),
        _value(2, "Running"),
        _value(5, "Faulted"),
        _value(9, "Running"),
    ]
    result = replay_rule(rule, messages, start_ms=T0, end_ms=T0 + 10 * MIN, timezone="UTC")
    assert [(f.phase, f.at_ms) for f in result.firings] == [("fire", T0 + 7 * MIN), ("clear", T0 + 9 * MIN)]
    assert (result.messages, result.fired, result.cleared) == (5, 1, 1)


def test_downtime_longer_than_min_minutes_from_mes_events() -> None:
    rule = _rule({"kind": "mes", "event": "downtime", "path": "acme/#", "min_minutes": 2, "states": [[180000, 229999]]})
    topic = f"{CELL}/mes/machine_state"
    messages = [
        (T0 + m * MIN, topic, orjson.dumps({"state": state})) for m, state in [(0, 10000), (1, 200000), (4, 10000)]
    ]
    result = replay_rule(rule, messages, start_ms=T0, end_ms=T0 + 10 * MIN, timezone="UTC")
    assert [(f.phase, f.at_ms, f.value) for f in result.firings] == [
        ("fire", T0 + 3 * MIN, 200000),
        ("clear", T0 + 4 * MIN, 10000),
    ]


def test_a_failing_condition_is_counted_not_fired() -> None:
    rule = _rule({"kind": "topic", "filter": f"{CELL}/data/#"}, condition="value > 1")
    result = replay_rule(rule, [_value(0, "text"), _value(1, 5)], start_ms=T0, end_ms=T0 + MIN * 2, timezone="UTC")
    assert (result.fired, result.errors, result.skipped) == (1, 1, 0)
    assert result.last_error is not None
    assert "value > 1" in result.last_error


def test_trying_on_current_values_takes_the_minimum_duration_as_passed() -> None:
    rule = _rule({"kind": "value", "topic": f"{CELL}/data/Temp", "above": 80, "for_s": 30})
    hot = [(f"{CELL}/data/Temp", b'{"value": 95}')]
    assert try_rule(rule, hot, now_ms=T0, timezone="UTC").fired == 1
    assert try_rule(rule, [(f"{CELL}/data/Temp", b'{"value": 20}')], now_ms=T0, timezone="UTC").fired == 0
