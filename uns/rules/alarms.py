"""Pure core of the alarms: raise, clear and acknowledge, with who and when (docs/rules.md#alarms).

An alarm is ``active`` or ``cleared``, and acknowledged or not, as in ISA-18.2: raised it is active
and unacknowledged; an operator acknowledges it (active, acknowledged); its condition goes away
(cleared; still unacknowledged, "returned to normal unacknowledged", until someone acknowledges it);
cleared and acknowledged it is ``normal`` and leaves the list. Raising a cleared alarm again starts
a new occurrence (unacknowledged). Each change is returned so the shell publishes it retained on
``<path>/alarm/<name>`` and records it in the history.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Literal

from uns.errors import UnsError

__all__ = ["Alarm", "AlarmBook", "AlarmError", "AlarmState", "alarm_topic"]

AlarmState = Literal["active", "cleared", "normal"]


class AlarmError(UnsError):
    """An acknowledgement of an alarm that is not there (named by its topic)."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"alarm {topic}: {reason}")


def alarm_topic(path: str, name: str) -> str:
    """The retained UNS topic of an alarm."""
    return f"{path}/alarm/{name}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Alarm:
    """One alarm's state; ``state`` is ``active``, ``cleared`` (returned to normal, not acknowledged) or ``normal``."""

    path: str
    name: str
    rule: str
    priority: int
    message: str
    state: AlarmState
    acknowledged: bool
    raised_ms: int
    value: object = None
    cleared_ms: int | None = None
    acked_by: str | None = None
    acked_ms: int | None = None
    ack_comment: str | None = None

    @property
    def topic(self) -> str:
        """``<path>/alarm/<name>``."""
        return alarm_topic(self.path, self.name)

    def to_json(self) -> dict[str, object]:
        """The retained body and the API's row."""
        return {
            "path": self.path,
            "name": self.name,
            "rule": self.rule,
            "priority": self.priority,
            "message": self.message,
            "state": self.state,
            "acknowledged": self.acknowledged,
            "value": self.value,
            "raised_ms": self.raised_ms,
            "cleared_ms": self.cleared_ms,
            "acked_by": self.acked_by,
            "acked_ms": self.acked_ms,
            "ack_comment": self.ack_comment,
            "timestamp_ms": max(t for t in (self.raised_ms, self.cleared_ms, self.acked_ms) if t is not None),
        }

    @classmethod
    def from_json(cls, body: Mapping[str, object]) -> Alarm | None:
        """An alarm read back from its retained topic, or None when the body is not one."""
        try:
            return cls(
                path=str(body["path"]),
                name=str(body["name"]),
                rule=str(body.get("rule", "")),
                priority=int(str(body["priority"])),
                message=str(body.get("message", "")),
                state=_state(body["state"]),
                acknowledged=bool(body["acknowledged"]),
                raised_ms=int(str(body["raised_ms"])),
                value=body.get("value"),
                cleared_ms=_int_or_none(body.get("cleared_ms")),
                acked_by=None if body.get("acked_by") is None else str(body["acked_by"]),
                acked_ms=_int_or_none(body.get("acked_ms")),
                ack_comment=None if body.get("ack_comment") is None else str(body["ack_comment"]),
            )
        except (KeyError, ValueError):
            return None


def _state(value: object) -> AlarmState:
    if value == "active":
        return "active"
    if value == "cleared":
        return "cleared"
    if value == "normal":
        return "normal"
    raise ValueError(f"state {value!r}")


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(str(value))


class AlarmBook:
    """Every alarm not ``normal``, by topic; each method returns the changed alarm (None: no change)."""

    def __init__(self) -> None:
        self._alarms: dict[str, Alarm] = {}

    def __len__(self) -> int:
        return len(self._alarms)

    def get(self, path: str, name: str) -> Alarm | None:
        """The alarm at ``path``/``name`` unless normal."""
        return self._alarms.get(alarm_topic(path, name))

    def listed(self) -> list[Alarm]:
        """Every alarm not normal: active first, then by priority (highest first), then newest first."""
        return sorted(self._alarms.values(), key=lambda a: (a.state != "active", -a.priority, -a.raised_ms))

    def restore(self, alarms: Iterable[Alarm]) -> None:
        """Take back the alarms read from their retained topics at start."""
        for alarm in alarms:
            if alarm.state == "normal":
                self._alarms.pop(alarm.topic, None)
            else:
                self._alarms[alarm.topic] = alarm

    def raise_alarm(
        self, *, path: str, name: str, rule: str, priority: int, message: str, value: object, now_ms: int
    ) -> Alarm | None:
        """Raise (None when it is already active: a repeat changes nothing)."""
        old = self._alarms.get(alarm_topic(path, name))
        if old is not None and old.state == "active":
            return None
        alarm = Alarm(
            path=path,
            name=name,
            rule=rule,
            priority=priority,
            message=message,
            state="active",
            acknowledged=False,
            raised_ms=now_ms,
            value=value,
        )
        self._alarms[alarm.topic] = alarm
        return alarm

    def clear(self, *, path: str, name: str, now_ms: int) -> Alarm | None:
        """The condition went away (None when the alarm is not active)."""
        old = self._alarms.get(alarm_topic(path, name))
        if old is None or old.state != "active":
            return None
        return self._set(dataclasses.replace(old, state="normal" if old.acknowledged else "cleared", cleared_ms=now_ms))

    def acknowledge(self, *, path: str, name: str, user: str, now_ms: int, comment: str | None = None) -> Alarm:
        """An operator saw it.

        Raises:
            AlarmError: no such alarm, or it is acknowledged already.
        """
        topic = alarm_topic(path, name)
        old = self._alarms.get(topic)
        if old is None:
            raise AlarmError(topic, "no such alarm (or it is normal already)")
        if old.acknowledged:
            raise AlarmError(topic, f"acknowledged already by {old.acked_by}")
        state: AlarmState = "normal" if old.state == "cleared" else old.state
        return self._set(
            dataclasses.replace(
                old, state=state, acknowledged=True, acked_by=user, acked_ms=now_ms, ack_comment=comment
            )
        )

    def _set(self, alarm: Alarm) -> Alarm:
        if alarm.state == "normal":
            self._alarms.pop(alarm.topic, None)
        else:
            self._alarms[alarm.topic] = alarm
        return alarm
