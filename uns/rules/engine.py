"""The rule engine: one MQTT client feeding every rule's trigger, a worker per rule running its actions.

Each rule is isolated: its firings wait in its own bounded queue and its worker runs them, so a slow
webhook holds up only its rule, and a failing rule is counted and logged (rate-limited, with the
firing that failed) while the others go on. ``replace`` swaps in a new rule set without a restart:
unchanged rules keep their state (a pending minimum duration, the last state seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

import httpx
import orjson

from model.rules import CronTrigger, Rule
from model.topic import ClassWord, at_every_depth
from uns.broker.acl import AclPolicy
from uns.clock import epoch_ms, now_ms, utc_now
from uns.connect import ClientFactory
from uns.errors import UnsError
from uns.event_wait import set_within
from uns.logs import RateLimitedLog
from uns.mqtt.filters import topic_matches
from uns.mqtt.types import Message, PubSub
from uns.rules.actions import ActionRunner, Target
from uns.rules.alarms import Alarm, AlarmBook
from uns.rules.conditions import Condition, compile_condition
from uns.rules.triggers import Firing, Watch, next_cron, subscriptions

__all__ = ["ALARM_FILTERS", "RuleEngine", "RuleStats"]

log = logging.getLogger(__name__)

ALARM_FILTERS = at_every_depth(ClassWord.alarm.value, "+")
"""Every alarm topic: read back at start to restore the alarm book from the retained states."""

_QUEUE = 1000


@dataclasses.dataclass(slots=True)
class RuleStats:
    """What one rule did: firings acted on, skipped by its condition, dropped (queue full), failures."""

    fired: int = 0
    cleared: int = 0
    skipped: int = 0
    dropped: int = 0
    errors: int = 0
    last_fired_ms: int | None = None
    last_error: str | None = None

    def to_json(self) -> dict[str, object]:
        """The API's and the health document's shape."""
        return dataclasses.asdict(self)


class _Running:
    """One rule's live parts."""

    def __init__(self, rule: Rule, timezone: str) -> None:
        self.rule = rule
        self.watch = Watch(rule.trigger)
        self.filters = subscriptions(rule.trigger)
        self.condition: Condition | None = compile_condition(rule) if rule.condition else None
        self.queue: asyncio.Queue[Firing] = asyncio.Queue(_QUEUE)
        self.stats = RuleStats()
        self.timezone = rule.trigger.timezone or timezone if isinstance(rule.trigger, CronTrigger) else timezone
        self.next_cron: datetime | None = None
        self.worker: asyncio.Task[None] | None = None


class RuleEngine:
    """Runs ``rules`` against the broker; an async context manager with ``run()``.

    Args:
        rules: the rules (checked by ``uns.rules.check`` beforehand).
        clients: opens the engine's MQTT client.
        targets: an equipment path's bound Sparkplug device (the write action).
        acl: the broker's role rules (the write action's role check).
        timezone: the schedules' default time zone (the plant's site).
        on_alarm: called with every alarm change (the history).
        client_id: the MQTT client id.
        tick_s: the longest wait between checks of a schedule, seconds (the wall clock may jump under
            it). A minimum duration is checked when it falls due; with no schedule and nothing due the
            check sleeps until a message starts a minimum duration that falls due sooner, or the rules change.
    """

    def __init__(
        self,
        *,
        rules: Sequence[Rule],
        clients: ClientFactory,
        targets: Callable[[str], Target | None] = lambda path: None,
        acl: AclPolicy | None = None,
        timezone: str = "UTC",
        on_alarm: Callable[[Alarm], None] = lambda alarm: None,
        client_id: str = "uns-rules",
        tick_s: float = 1.0,
    ) -> None:
        self._clients = clients
        self._targets = targets
        self._acl = acl or AclPolicy()
        self._timezone = timezone
        self._on_alarm = on_alarm
        self._client_id = client_id
        self._tick_s = tick_s
        self._woken = asyncio.Event()  # a message started a minimum duration due before _wake_at, or the rules changed
        self._wake_at = math.inf  # monotonic: when the check wakes next by itself
        self._rules: dict[str, _Running] = {rule.name: _Running(rule, timezone) for rule in rules}
        self._stack = contextlib.AsyncExitStack()
        self._client: PubSub | None = None
        self._runner: ActionRunner | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._warn = RateLimitedLog(log)
        self.alarms = AlarmBook()

    @property
    def rules(self) -> list[Rule]:
        """The rules running now."""
        return [running.rule for running in self._rules.values()]

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Publish through the engine's client (the service's health: a ``uns.health.HealthPublisher``)."""
        if self._client is None:
            raise RuntimeError("the rule engine is not entered")
        await self._client.publish(topic, payload, qos=qos, retain=retain)

    @property
    def runner(self) -> ActionRunner:
        """The action runner (its dry-run record, rate-limit count)."""
        if self._runner is None:
            raise RuntimeError("the rule engine is not entered")
        return self._runner

    def stats(self) -> dict[str, RuleStats]:
        """Each rule's counters by name."""
        return {name: running.stats for name, running in self._rules.items()}

    async def __aenter__(self) -> Self:
        try:
            self._client = await self._stack.enter_async_context(self._clients(client_id=self._client_id))
            http = await self._stack.enter_async_context(httpx.AsyncClient())
            self._runner = ActionRunner(
                client=self._client, http=http, targets=self._targets, acl=self._acl, alarms=self.alarms,
                on_alarm=self._on_alarm, now_ms=now_ms,
            )  # fmt: skip
            await self._client.subscribe(list(ALARM_FILTERS))
            await self._subscribe(self._rules.values())
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client = None
        await self._stack.__aexit__(exc_type, exc, tb)

    async def run(self) -> None:
        """Read messages, tick timers and run actions until cancelled."""
        client = self._client
        if client is None:
            raise RuntimeError("the rule engine is not entered")
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            for running in self._rules.values():
                self._start(running)
            tasks.create_task(self._tick(), name="uns.rules.tick")
            try:
                async for message in client.messages():
                    self._dispatch(message)
            finally:
                self._tasks = None

    async def replace(self, rules: Sequence[Rule]) -> None:
        """Swap in a new rule set (already checked): new and changed rules start, removed ones stop."""
        fresh: dict[str, _Running] = {}
        for rule in rules:
            old = self._rules.get(rule.name)
            fresh[rule.name] = old if old is not None and old.rule == rule else _Running(rule, self._timezone)
        for name, old in self._rules.items():
            if fresh.get(name) is not old and old.worker is not None:
                old.worker.cancel()
        added = [running for running in fresh.values() if running.worker is None]
        self._rules = fresh
        self._woken.set()
        await self._subscribe(added)
        if self._tasks is not None:
            for running in added:
                self._start(running)

    async def acknowledge(self, *, path: str, name: str, user: str, comment: str | None = None) -> Alarm:
        """Acknowledge an alarm as ``user`` and publish it (raises ``AlarmError`` naming an unknown one)."""
        alarm = self.alarms.acknowledge(path=path, name=name, user=user, now_ms=now_ms(), comment=comment)
        await self.runner.publish_alarm(alarm)
        return alarm

    async def _subscribe(self, rules: Iterable[_Running]) -> None:
        if self._client is None:
            raise RuntimeError("the rule engine is not entered")
        filters = sorted({f for running in rules for f in running.filters})
        if filters:
            await self._client.subscribe(filters)

    def _start(self, running: _Running) -> None:
        if self._tasks is None:
            raise RuntimeError("the rule engine is not running")
        running.worker = self._tasks.create_task(self._work(running), name=f"uns.rules.{running.rule.name}")

    def _dispatch(self, message: Message) -> None:
        if message.retain and "/alarm/" in message.topic:
            self._restore(message)
        mono = time.monotonic()
        wall = now_ms()
        for running in self._rules.values():
            if not running.rule.enabled or not any(topic_matches(message.topic, f) for f in running.filters):
                continue
            self._queue(running, running.watch.on_message(message.topic, message.payload, now_s=mono, now_ms=wall))
            due = running.watch.next_due_s()
            if due is not None and due < self._wake_at:  # not for every message while one is pending
                self._woken.set()

    def _restore(self, message: Message) -> None:
        try:
            body = orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            return
        alarm = Alarm.from_json(body) if isinstance(body, dict) else None
        if alarm is not None and alarm.topic == message.topic and self.alarms.get(alarm.path, alarm.name) is None:
            self.alarms.restore([alarm])

    def _queue(self, running: _Running, firings: list[Firing]) -> None:
        for firing in firings:
            try:
                running.queue.put_nowait(firing)
            except asyncio.QueueFull:
                running.stats.dropped += 1
                self._warn.warning(
                    ("dropped", running.rule.name), "rule %s: queue full, firing dropped", running.rule.name
                )

    async def _tick(self) -> None:
        while True:
            self._woken.clear()
            mono = time.monotonic()
            now = utc_now()
            wake_at = math.inf
            for running in self._rules.values():
                if not running.rule.enabled:
                    continue
                trigger = running.rule.trigger
                if isinstance(trigger, CronTrigger):
                    if running.next_cron is None:
                        running.next_cron = next_cron(trigger.schedule, running.timezone, now)
                    elif now >= running.next_cron:
                        stamp = epoch_ms(running.next_cron)
                        running.next_cron = next_cron(trigger.schedule, running.timezone, now)
                        self._queue(running, [Firing(phase="fire", value=stamp, timestamp_ms=stamp)])
                    # at most tick_s: the wall clock may jump under a schedule
                    wake_at = min(wake_at, mono + min(self._tick_s, (running.next_cron - now).total_seconds()))
                else:
                    self._queue(running, running.watch.on_tick(mono))
                    due = running.watch.next_due_s()
                    if due is not None:
                        wake_at = min(wake_at, due)
            # sleep until the next check due; with none, until a message or the rules wake it
            self._wake_at = wake_at
            await set_within(self._woken, None if wake_at == math.inf else wake_at - mono)

    async def _work(self, running: _Running) -> None:
        rule, stats, runner = running.rule, running.stats, self.runner
        while True:
            firing = await running.queue.get()
            try:
                if (
                    firing.phase == "fire"
                    and running.condition is not None
                    and not running.condition.holds(firing, rule.name)
                ):
                    stats.skipped += 1
                    continue
                await runner.run(rule.name, rule.actions, firing)
            except UnsError as exc:
                self._failed(running, firing, str(exc))
            except Exception as exc:
                self._failed(running, firing, f"{type(exc).__name__}: {exc}")
            else:
                if firing.phase == "fire":
                    stats.fired += 1
                    stats.last_fired_ms = now_ms()
                else:
                    stats.cleared += 1

    def _failed(self, running: _Running, firing: Firing, reason: str) -> None:
        running.stats.errors += 1
        running.stats.last_error = reason
        inputs = orjson.dumps(firing.context(running.rule.name), default=str).decode()
        self._warn.warning(
            ("failed", running.rule.name), "rule %s failed: %s; inputs %s", running.rule.name, reason, inputs
        )
