"""What a rule would have done, and would do now: its trigger and condition run over given messages (pure).

The live engine's own parts are used: the trigger's ``Watch`` (state per topic, hysteresis, minimum
durations), the compiled condition and the cron schedule; only the clock is the messages' time
instead of the hub's. Actions are never run: a replay counts the firings that would have run them.
A replay starts as a freshly loaded rule does, with no state, at the window's start.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from model.rules import CronTrigger, Rule
from uns.clock import at_epoch_ms, epoch_ms
from uns.errors import UnsError
from uns.rules.conditions import compile_condition
from uns.rules.triggers import Firing, Watch, next_cron

__all__ = ["MAX_LISTED", "Outcome", "ReplayMessage", "RuleReplay", "replay_rule", "try_rule"]

MAX_LISTED = 100
"""At most this many firings are listed (all are counted)."""

_MAX_CRON = 100_000  # schedule instants looked at in one window
_EPSILON_S = 1e-6  # a due time handed back to the watch is at (not a float's hair before) its limit

ReplayMessage = tuple[int, str, bytes]
"""(timestamp ms, topic, payload), oldest first."""


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """One firing: when the actions would have run, on which topic and value, and what the condition said."""

    at_ms: int
    phase: str
    topic: str
    value: object
    acted: bool
    note: str = ""

    def to_json(self) -> dict[str, object]:
        """The API's shape."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(slots=True)
class RuleReplay:
    """A rule over a stretch of messages: counts and the first ``MAX_LISTED`` firings."""

    messages: int = 0
    fired: int = 0
    cleared: int = 0
    skipped: int = 0
    errors: int = 0
    last_error: str | None = None
    firings: list[Outcome] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The API's shape."""
        out = dataclasses.asdict(self)
        out["firings"] = [firing.to_json() for firing in self.firings]
        return out


class _Run:
    def __init__(self, rule: Rule, start_ms: int) -> None:
        self.rule = rule
        self.watch = Watch(rule.trigger)
        self.condition = compile_condition(rule) if rule.condition else None
        self.start_ms = start_ms
        self.result = RuleReplay()

    def seconds(self, at_ms: int) -> float:
        # the watch's clock: seconds since the window's start (small numbers: exact enough for durations)
        return (at_ms - self.start_ms) / 1000

    def act(self, firings: list[Firing], at_ms: int) -> None:
        result = self.result
        for firing in firings:
            acted, note = True, ""
            if firing.phase == "clear":
                result.cleared += 1
            elif self.condition is not None:
                try:
                    acted = self.condition.holds(firing, self.rule.name)
                except UnsError as exc:
                    acted, note = False, str(exc)
                    result.errors += 1
                    result.last_error = note
                if acted:
                    result.fired += 1
                elif not note:
                    result.skipped += 1
                    note = "condition false"
            else:
                result.fired += 1
            if len(result.firings) < MAX_LISTED:
                result.firings.append(Outcome(at_ms, firing.phase, firing.topic, firing.value, acted, note))

    def due_until(self, until_ms: int) -> None:
        """Fire what falls due before ``until_ms`` (minimum durations), at the time it falls due."""
        while (due := self.watch.next_due_s()) is not None:
            at_ms = self.start_ms + round(due * 1000)
            if at_ms > until_ms:
                return
            firings = self.watch.on_tick(due + _EPSILON_S)
            if not firings:
                return
            self.act(firings, at_ms)


def replay_rule(
    rule: Rule, messages: Iterable[ReplayMessage], *, start_ms: int, end_ms: int, timezone: str
) -> RuleReplay:
    """What ``rule`` would have done over ``[start_ms, end_ms)`` given the messages then (oldest first)."""
    run = _Run(rule, start_ms)
    trigger = rule.trigger
    if isinstance(trigger, CronTrigger):
        zone = trigger.timezone or timezone
        at = at_epoch_ms(start_ms)
        for _ in range(_MAX_CRON):
            at = next_cron(trigger.schedule, zone, at)
            stamp = epoch_ms(at)
            if stamp >= end_ms:
                break
            run.act([Firing(phase="fire", value=stamp, timestamp_ms=stamp)], stamp)
        return run.result
    for at_ms, topic, payload in messages:
        run.due_until(at_ms)
        run.result.messages += 1
        run.act(run.watch.on_message(topic, payload, now_s=run.seconds(at_ms), now_ms=at_ms), at_ms)
    run.due_until(end_ms)
    return run.result


def try_rule(rule: Rule, current: Iterable[tuple[str, bytes]], *, now_ms: int, timezone: str) -> RuleReplay:
    """What ``rule`` would do with the current values (each topic's last message), were they to stay as they are.

    A minimum duration is taken as passed; a schedule lists its next three instants.
    """
    trigger = rule.trigger
    if isinstance(trigger, CronTrigger):
        run = _Run(rule, now_ms)
        at = at_epoch_ms(now_ms)
        for _ in range(3):
            at = next_cron(trigger.schedule, trigger.timezone or timezone, at)
            stamp = epoch_ms(at)
            run.act([Firing(phase="fire", value=stamp, timestamp_ms=stamp)], stamp)
        return run.result
    messages = [(now_ms, topic, payload) for topic, payload in current]
    hold_ms = 1000 * max(getattr(trigger, "for_s", 0.0), 60 * getattr(trigger, "min_minutes", 0.0))
    return replay_rule(rule, messages, start_ms=now_ms, end_ms=now_ms + int(hold_ms) + 1, timezone=timezone)
