"""Pure core of the triggers: messages and clock ticks in, firings out (no I/O, the time is passed in).

Each watcher keeps its state per topic (a filter watches every matching topic on its own). A
``Firing`` of phase ``fire`` runs the rule's actions; phase ``clear`` (the value back past the
hysteresis, the state left, the machine producing again) clears the alarms the rule raised.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import orjson
from croniter import croniter  # type: ignore[import-untyped]

from model.rules import CronTrigger, MesTrigger, StateTrigger, TopicTrigger, Trigger, ValueTrigger
from model.topic import ClassWord, TopicError, UnsTopic, at_every_depth
from uns.mqtt.filters import topic_matches

__all__ = ["Firing", "Phase", "Watch", "decode", "next_cron", "subscriptions", "watch_for"]

Phase = Literal["fire", "clear"]

_PRODUCING = range(10_000, 30_000)  # state catalog: producing and producing at reduced speed (docs/mes.md)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Firing:
    """One firing (or clearing) of a trigger: what the templates and the condition see."""

    phase: Phase
    topic: str = ""
    path: str = ""
    value: object = None
    previous: object = None
    timestamp_ms: int = 0
    body: object = None

    def context(self, rule: str) -> dict[str, object]:
        """The names a template or condition may use: rule, phase, topic, path, value, previous, timestamp_ms, body."""
        return {
            "rule": rule,
            "phase": self.phase,
            "topic": self.topic,
            "path": self.path,
            "value": self.value,
            "previous": self.previous,
            "timestamp_ms": self.timestamp_ms,
            "body": self.body,
        }


def decode(payload: bytes) -> object:
    """A message's JSON body, or its text when it is not JSON."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.decode("utf-8", "replace")


def _value_of(body: object) -> object:
    return body.get("value") if isinstance(body, Mapping) else body


def _path_of(topic: str) -> str:
    try:
        return UnsTopic.from_str(topic).equipment_path
    except TopicError:
        return ""


def _same(a: object, b: object) -> bool:
    """Equal, without Python's True == 1."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


@dataclasses.dataclass(slots=True)
class _Pending:
    since_s: float
    firing: Firing
    fired: bool = False


class Watch:
    """A trigger's state: ``on_message`` and ``on_tick`` return the firings due, in order."""

    def __init__(self, trigger: Trigger) -> None:
        self.trigger = trigger
        self._pending: dict[str, _Pending] = {}
        self._last: dict[str, object] = {}

    def on_message(self, topic: str, payload: bytes, *, now_s: float, now_ms: int) -> list[Firing]:
        """Firings caused by one message (already known to match the trigger's subscription)."""
        trigger = self.trigger
        if isinstance(trigger, CronTrigger):
            return []
        body = decode(payload)
        if isinstance(trigger, TopicTrigger):
            value = _value_of(body)
            return [
                Firing(phase="fire", topic=topic, path=_path_of(topic), value=value, timestamp_ms=now_ms, body=body)
            ]
        if isinstance(trigger, MesTrigger):
            return self._mes(trigger, topic, body, now_s, now_ms)
        value = _value_of(body)
        first = topic not in self._last
        firing = Firing(
            phase="fire",
            topic=topic,
            path=_path_of(topic),
            value=value,
            previous=self._last.get(topic),
            timestamp_ms=now_ms,
            body=body,
        )
        self._last[topic] = value
        if isinstance(trigger, ValueTrigger):
            return self._value(trigger, firing, now_s)
        return self._state(trigger, firing, first, now_s)

    def on_tick(self, now_s: float) -> list[Firing]:
        """Firings whose minimum duration has passed by ``now_s``."""
        out: list[Firing] = []
        hold = self._hold_s()
        for pending in self._pending.values():
            if not pending.fired and now_s - pending.since_s >= hold:
                pending.fired = True
                out.append(pending.firing)
        return out

    def next_due_s(self) -> float | None:
        """The earliest time a pending firing falls due, or None."""
        hold = self._hold_s()
        times = [p.since_s + hold for p in self._pending.values() if not p.fired]
        return min(times) if times else None

    def _hold_s(self) -> float:
        trigger = self.trigger
        if isinstance(trigger, MesTrigger):
            return trigger.min_minutes * 60.0
        if isinstance(trigger, ValueTrigger | StateTrigger):
            return trigger.for_s
        return 0.0

    def _enter(self, key: str, firing: Firing, now_s: float) -> list[Firing]:
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = _Pending(since_s=now_s, firing=firing)
        return self.on_tick(now_s)

    def _leave(self, key: str, firing: Firing) -> list[Firing]:
        pending = self._pending.pop(key, None)
        if pending is not None and pending.fired:
            return [dataclasses.replace(firing, phase="clear")]
        return []

    def _value(self, trigger: ValueTrigger, firing: Firing, now_s: float) -> list[Firing]:
        value = firing.value
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            return []  # a null, stale text or NaN neither raises nor clears
        active = firing.topic in self._pending
        if trigger.above is not None:
            limit = trigger.above - trigger.hysteresis if active else trigger.above
            past = value >= limit if active else value > limit
        else:
            below = trigger.below if trigger.below is not None else math.inf  # the model requires one of the two
            limit = below + trigger.hysteresis if active else below
            past = value <= limit if active else value < limit
        if past:
            return self._enter(firing.topic, firing, now_s)
        return self._leave(firing.topic, firing)

    def _state(self, trigger: StateTrigger, firing: Firing, first: bool, now_s: float) -> list[Firing]:
        if not first and _same(firing.previous, firing.value):
            return []
        wanted = trigger.to is None or any(_same(firing.value, want) for want in trigger.to)
        out = self._leave(firing.topic, firing)
        # the first value seen (often the retained one) is no change, unless it is a state asked for
        if wanted and (trigger.to is not None or not first):
            out += self._enter(firing.topic, firing, now_s)
        return out

    def _mes(self, trigger: MesTrigger, topic: str, body: object, now_s: float, now_ms: int) -> list[Firing]:
        path = topic.rsplit("/mes/", 1)[0]
        if not topic_matches(path, trigger.path) or not isinstance(body, Mapping):
            return []
        firing = Firing(phase="fire", topic=topic, path=path, timestamp_ms=now_ms, body=body)
        if trigger.event == "order_completed":
            if topic.endswith("/mes/work_order") and body.get("action") == "complete":
                return [dataclasses.replace(firing, value=body.get("order_id"))]
            return []
        state = body.get("state")
        if not topic.endswith("/mes/machine_state") or not isinstance(state, int):
            return []
        firing = dataclasses.replace(firing, value=state)
        if trigger.states is None:
            down = state not in _PRODUCING
        else:
            down = any(low <= state <= high for low, high in trigger.states)
        if not down:
            return self._leave(path, firing)
        pending = self._pending.get(path)
        if pending is not None and not pending.fired:
            pending.firing = firing  # still down: the firing names the latest state
        return self._enter(path, firing, now_s)


def watch_for(trigger: Trigger) -> Watch:
    """A fresh watcher of ``trigger``."""
    return Watch(trigger)


def subscriptions(trigger: Trigger) -> list[str]:
    """The MQTT filters a trigger needs (none for a schedule)."""
    if isinstance(trigger, CronTrigger):
        return []
    if isinstance(trigger, TopicTrigger):
        return [trigger.filter]
    if isinstance(trigger, MesTrigger):
        # every depth, as the MES adapter subscribes: MQTT allows nothing after '#', so the path filter is
        # applied per message
        event = "work_order" if trigger.event == "order_completed" else "machine_state"
        return list(at_every_depth(ClassWord.mes.value, event))
    return [trigger.topic]


def next_cron(schedule: str, timezone: str, after: datetime) -> datetime:
    """The first time after ``after`` (aware) that ``schedule`` names in ``timezone``, as an aware UTC datetime."""
    local = after.astimezone(ZoneInfo(timezone))
    nxt: datetime = croniter(schedule, local).get_next(datetime)
    if nxt <= after:  # croniter works to the second; never hand back the same instant twice
        nxt = croniter(schedule, local + timedelta(seconds=1)).get_next(datetime)
    return nxt.astimezone(ZoneInfo("UTC"))
