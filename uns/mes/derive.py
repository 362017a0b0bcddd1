"""Derive MES events from machine metrics by rule: state codes, running counters, part-done bits (pure core).

The MES adapter offers every sample of a UNS data topic (``<path>/data/<name>``) to a ``Deriver``;
the rules (``MesSection.derive``) that match the topic turn it into MES events for the topic's
equipment path:

- ``state``: the PLC code, mapped through ``state_map`` over the rule's preset (unmapped: 30000
  unknown), becomes a ``machine_state`` when it changes. Bad or stale quality, or no value, is
  30000 unknown (once, as any unchanged code). With ``reason_match`` the rule names a sibling
  metric of the cell (``FaultCode``): its latest non-zero value becomes the ``reason_code`` of the
  cell's stop states (never of producing states). State and reason usually share one Sparkplug
  payload and reach us one after the other in either order, so a state event of such a rule is
  held until its timestamp is complete: it is released when a sample with a later timestamp is
  offered (any topic), or by ``flush``. Until then a reason sample attaches to it and a second
  state at the same timestamp replaces it. A reason that changes during a stop (at a later
  timestamp) emits a new ``machine_state`` with the same state and the new reason.
- ``counter``: a running count becomes ``production_count`` events of the deltas. The first value
  sets the baseline. A drop is a rollover when the last value was above half the rollover and
  the new one below it (delta = value + rollover − last), else a reset of the PLC (delta = value).
  ``counts``: a ``good`` or ``total`` counter emits ``total=delta, scrap=0``; a ``scrap`` counter
  emits ``total=delta, scrap=delta``. So a cell with a good and a scrap counter gets the right
  total, good and scrap by summing its counts (a cell must not have a ``total`` counter and a
  ``scrap`` counter together: the scrap would be counted twice). ``state()`` and ``restore()``
  carry the baselines across restarts: persist them in the same transaction as the events.
- ``part_done``: the time between two rising edges of the bit is the cell's cycle time, carried
  as ``cycle_time_s`` by the cell's counts (a span with a stop state of the cell in it is no
  cycle). A cell that no counter rule covers gets a ``production_count`` with ``total=1`` per
  rising edge instead.

Every event has ``source="derived"`` and an ``event_id`` made from the data topic and the
sample's timestamp, so a replayed sample derives the same id and is stored once. Samples older
than the topic's last one are skipped and counted in ``problems``.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Literal

from model.config import DeriveRule
from model.envelope import USABLE_QUALITIES
from model.mes import MachineState, ProductionCount
from model.topic import ClassWord, TopicError, UnsTopic
from uns.errors import ConfigError
from uns.mes.states import UNKNOWN, is_producing, preset
from uns.mqtt.filters import filter_error, topic_matches

__all__ = ["CounterBaseline", "DerivedEvent", "DerivedEventName", "Deriver"]

log = logging.getLogger(__name__)

DerivedEventName = Literal["machine_state", "production_count"]

_MAX_CODE = 999_999
_Value = float | int | bool | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DerivedEvent:
    """An MES event derived from a machine metric.

    Attributes:
        path: the equipment path of the data topic; the event belongs on ``<path>/mes/<event>``.
        event: ``machine_state`` or ``production_count``.
        body: the JSON body, valid for ``model.mes.EVENT_MODELS[event]``; carries ``event_id``.
        event_id: ``derived-<hash of data topic and timestamp>``: the same sample gives the same id.
    """

    path: str
    event: DerivedEventName
    body: dict[str, object]
    event_id: str

    @property
    def topic(self) -> str:
        """The MES topic of the event: ``<path>/mes/<event>``."""
        return f"{self.path}/{ClassWord.mes.value}/{self.event}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CounterBaseline:
    """The last value of a running counter and when it was read (a row of ``mes_counter_state``)."""

    value: int
    ts_ms: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Rule:
    index: int
    rule: DeriveRule
    codes: Mapping[int, int]
    cell_filter: str | None
    """The rule's filter over equipment paths (the part before ``data``), if it has one."""

    def covers(self, path: str, name: str) -> bool:
        """Whether the rule would match a metric ``name`` of the cell at ``path``."""
        if self.cell_filter is not None:
            return topic_matches(path, self.cell_filter)
        return topic_matches(f"{path}/{ClassWord.data.value}/{name}", self.rule.match)


@dataclasses.dataclass(frozen=True, slots=True)
class _Route:
    """What one data topic means to the rules (first matching rule of each kind)."""

    path: str
    state: _Rule | None
    counter: _Rule | None
    part_done: _Rule | None
    is_reason: bool


@dataclasses.dataclass(slots=True)
class _StateTrack:
    topic: str
    path: str
    rule: _Rule
    reason_topic: str | None
    last_ts: int | None = None
    code: int | None = None
    """The latest decided code, pending or emitted."""
    pending_ts: int | None = None
    emitted_code: int | None = None
    emitted_reason: str | None = None


class Deriver:
    """Turns samples of machine metrics into MES events, by rule (see the module docstring).

    Args:
        rules: the derive rules (``MesSection.derive``), in order: of several rules of one kind
            matching a topic, the first wins.

    Raises:
        ConfigError: a bad filter, an unknown preset, a state code out of range, a bad reason name.
    """

    def __init__(self, rules: Sequence[DeriveRule]) -> None:
        self._rules = tuple(_compile(index, rule) for index, rule in enumerate(rules))
        self._routes: dict[str, _Route | None] = {}
        self._tracks: dict[str, _StateTrack] = {}
        self._pending: dict[str, _StateTrack] = {}
        self._reasons: dict[str, tuple[int, str | None]] = {}
        self._reason_tracks: dict[str, list[_StateTrack]] = collections.defaultdict(list)
        self._counters: dict[str, CounterBaseline] = {}
        self._bits: dict[str, tuple[bool, int]] = {}
        self._edges: dict[str, int] = {}
        self._cycles: dict[str, float] = {}
        self._stopped_at: dict[str, int] = {}
        self._counted: dict[str, bool] = {}
        self._problems: collections.Counter[str] = collections.Counter()

    @property
    def problems(self) -> Mapping[str, int]:
        """Samples skipped or not mapped, by kind: bad_timestamp, out_of_order, not_a_count, unmapped_state."""
        return dict(self._problems)

    @property
    def pending(self) -> int:
        """How many state events wait for their timestamp to complete (``flush`` releases them)."""
        return len(self._pending)

    def cycle_time_s(self, path: str) -> float | None:
        """The latest cycle time measured at a cell from its part-done bit, seconds."""
        return self._cycles.get(path)

    def offer(self, topic: str, ts_ms: int, value: _Value, quality: str) -> list[DerivedEvent]:
        """Take one sample of a data topic; return the events it completes, oldest first.

        Args:
            topic: the UNS topic, ``<path>/data/<name...>``; other topics only move time on.
            ts_ms: the sample's timestamp, ms since 1970 UTC.
            value: the sample's value.
            quality: ``good``, ``uncertain``, ``bad`` or ``stale``.
        """
        if ts_ms < 0:
            self._problems["bad_timestamp"] += 1
            return []
        out = self._release(before_ms=ts_ms)
        route = self._route(topic)
        if route is None:
            return out
        if route.is_reason:
            self._on_reason(topic, ts_ms, value, quality)
        if route.state is not None:
            out.extend(self._on_state(topic, route.path, route.state, ts_ms, value, quality))
        if route.counter is not None:
            out.extend(self._on_counter(topic, route.path, route.counter, ts_ms, value, quality))
        if route.part_done is not None:
            out.extend(self._on_part_done(topic, route.path, route.part_done, ts_ms, value, quality))
        return out

    def flush(self, before_ms: int | None = None) -> list[DerivedEvent]:
        """Release held state events with a timestamp before ``before_ms`` (all when None).

        The adapter calls it on a timer (``before_ms`` = now minus a grace of a second or so) and
        on shutdown, so a state whose cell sends nothing else is not held for long.
        """
        return self._release(before_ms=before_ms)

    def state(self) -> dict[str, CounterBaseline]:
        """Every counter's baseline, by data topic, to persist (``mes_counter_state``)."""
        return dict(self._counters)

    def restore(self, topic: str, value: float, ts_ms: int) -> None:
        """Set a counter's baseline, as persisted before a restart; call before offering samples.

        The first sample after it yields the delta since ``value`` (what the PLC counted while the
        hub was down), with ``period_start_ms = ts_ms``.

        Raises:
            ValueError: the value is not a non-negative whole number, or ts_ms is negative.
        """
        count = _whole(value)
        if count is None or ts_ms < 0:
            raise ValueError(f"counter baseline of {topic}: value {value!r} at {ts_ms} is not a count and a time")
        self._counters[topic] = CounterBaseline(value=count, ts_ms=ts_ms)

    # --- states and reasons

    def _on_state(
        self, topic: str, path: str, rule: _Rule, ts_ms: int, value: _Value, quality: str
    ) -> list[DerivedEvent]:
        track = self._tracks.get(topic)
        if track is None:
            reason = rule.rule.reason_match
            reason_topic = f"{path}/{ClassWord.data.value}/{reason}" if reason else None
            track = self._tracks[topic] = _StateTrack(topic, path, rule, reason_topic)
            if reason_topic is not None:
                self._reason_tracks[reason_topic].append(track)
        if track.last_ts is not None and ts_ms < track.last_ts:
            self._problems["out_of_order"] += 1
            log.debug("state %s: sample at %d is older than the last one (%d): skipped", topic, ts_ms, track.last_ts)
            return []
        track.last_ts = ts_ms
        code = self._code(rule, value, quality)
        if code == track.code:
            return []
        track.code = code
        if not is_producing(code):
            self._stopped_at[path] = ts_ms
        if track.reason_topic is None:
            event = self._emit_state(track, ts_ms)
            return [] if event is None else [event]
        # held until the timestamp is complete; a second state at the same timestamp replaces it
        track.pending_ts = ts_ms
        self._pending[topic] = track
        return []

    def _on_reason(self, topic: str, ts_ms: int, value: _Value, quality: str) -> None:
        known = self._reasons.get(topic)
        if known is not None and ts_ms < known[0]:
            self._problems["out_of_order"] += 1
            return
        text = _reason_text(value) if quality in USABLE_QUALITIES else None
        self._reasons[topic] = (ts_ms, text)
        for track in self._reason_tracks.get(topic, ()):
            if track.pending_ts is not None or track.code is None or is_producing(track.code):
                continue  # a held event reads the reason when released; producing carries none
            if text is None or text == track.emitted_reason:
                continue
            if track.last_ts is not None and ts_ms < track.last_ts:
                continue
            # the reason changed during a stop: the same state from here on, with the new reason
            track.last_ts = ts_ms
            track.pending_ts = ts_ms
            self._pending[track.topic] = track

    def _release(self, *, before_ms: int | None) -> list[DerivedEvent]:
        if not self._pending:
            return []
        due = [
            track
            for track in self._pending.values()
            if before_ms is None or (track.pending_ts is not None and track.pending_ts < before_ms)
        ]
        due.sort(key=lambda track: (track.pending_ts or 0, track.topic))
        out: list[DerivedEvent] = []
        for track in due:
            del self._pending[track.topic]
            ts_ms = track.pending_ts
            track.pending_ts = None
            if ts_ms is not None:
                event = self._emit_state(track, ts_ms)
                if event is not None:
                    out.append(event)
        return out

    def _emit_state(self, track: _StateTrack, ts_ms: int) -> DerivedEvent | None:
        code = track.code if track.code is not None else UNKNOWN
        reason = None
        if track.reason_topic is not None and not is_producing(code):
            known = self._reasons.get(track.reason_topic)
            reason = None if known is None else known[1]
        if code == track.emitted_code and reason == track.emitted_reason:
            return None  # flickered back within one timestamp: nothing changed
        track.emitted_code, track.emitted_reason = code, reason
        event_id = _event_id(track.topic, ts_ms)
        body = MachineState(
            timestamp_ms=ts_ms, state=code, reason_code=reason, event_id=event_id, source="derived"
        ).model_dump(mode="json", exclude_none=True)
        return DerivedEvent(path=track.path, event="machine_state", body=body, event_id=event_id)

    def _code(self, rule: _Rule, value: _Value, quality: str) -> int:
        if quality not in USABLE_QUALITIES or value is None:
            return UNKNOWN
        raw = _whole(value, allow_negative=True)
        mapped = None if raw is None else rule.rule.state_map.get(raw, rule.codes.get(raw))
        if mapped is None:
            self._problems["unmapped_state"] += 1
            return UNKNOWN
        return mapped

    # --- counters and part-done bits

    def _on_counter(
        self, topic: str, path: str, rule: _Rule, ts_ms: int, value: _Value, quality: str
    ) -> list[DerivedEvent]:
        if quality not in USABLE_QUALITIES or value is None:
            return []  # no reading: the next good one covers the gap
        count = _whole(value)
        if count is None:
            self._problems["not_a_count"] += 1
            log.debug("counter %s: %r is not a count: skipped", topic, value)
            return []
        base = self._counters.get(topic)
        if base is None:
            self._counters[topic] = CounterBaseline(value=count, ts_ms=ts_ms)
            return []
        if ts_ms <= base.ts_ms:
            if ts_ms < base.ts_ms or count != base.value:
                self._problems["out_of_order"] += 1
            return []  # an equal sample again is a duplicate delivery
        delta = _delta(base.value, count, round(rule.rule.rollover))
        self._counters[topic] = CounterBaseline(value=count, ts_ms=ts_ms)
        if delta == 0:
            return []
        scrap = delta if rule.rule.counts == "scrap" else 0
        return [self._count(topic, path, ts_ms, delta, scrap, base.ts_ms, self._cycles.get(path))]

    def _on_part_done(
        self, topic: str, path: str, rule: _Rule, ts_ms: int, value: _Value, quality: str
    ) -> list[DerivedEvent]:
        if quality not in USABLE_QUALITIES or value is None or (isinstance(value, float) and not math.isfinite(value)):
            return []
        level = bool(value)
        last = self._bits.get(topic)
        if last is not None and ts_ms < last[1]:
            self._problems["out_of_order"] += 1
            return []
        self._bits[topic] = (level, ts_ms)
        if last is None or last[0] or not level:
            return []  # not a rising edge (the first sample only sets the level)
        previous = self._edges.get(topic)
        self._edges[topic] = ts_ms
        cycle = None
        if previous is not None and ts_ms > previous and self._stopped_at.get(path, -1) < previous:
            cycle = (ts_ms - previous) / 1000
            self._cycles[path] = cycle
        if self._is_counted(path):
            return []
        scrap = 1 if rule.rule.counts == "scrap" else 0
        return [self._count(topic, path, ts_ms, 1, scrap, previous, cycle)]

    def _count(
        self, topic: str, path: str, ts_ms: int, total: int, scrap: int, since: int | None, cycle: float | None
    ) -> DerivedEvent:
        event_id = _event_id(topic, ts_ms)
        body = ProductionCount(
            timestamp_ms=ts_ms,
            total=total,
            scrap=scrap,
            period_start_ms=since,
            cycle_time_s=cycle,
            event_id=event_id,
            source="derived",
        ).model_dump(mode="json", exclude_none=True)
        return DerivedEvent(path=path, event="production_count", body=body, event_id=event_id)

    def _is_counted(self, path: str) -> bool:
        known = self._counted.get(path)
        if known is None:
            known = self._counted[path] = any(
                rule.rule.kind == "counter" and rule.covers(path, "_") for rule in self._rules
            )
        return known

    def _route(self, topic: str) -> _Route | None:
        if topic in self._routes:
            return self._routes[topic]
        route = _route_of(topic, self._rules)
        self._routes[topic] = route
        return route


def _compile(index: int, rule: DeriveRule) -> _Rule:
    where = f"mes.derive[{index}]"
    problem = filter_error(rule.match)
    if problem is not None:
        raise ConfigError(source="settings", path=f"{where}.match", reason=problem, value=rule.match)
    codes: Mapping[int, int] = {}
    if rule.kind == "state":
        if rule.state_preset is not None:
            codes = preset(rule.state_preset)
        for plc_code, code in rule.state_map.items():
            if not 0 <= code <= _MAX_CODE:
                raise ConfigError(
                    source="settings",
                    path=f"{where}.state_map.{plc_code}",
                    reason=f"a state catalog code is 0..{_MAX_CODE}",
                    value=code,
                )
        reason = rule.reason_match
        if reason is not None and (
            not reason or any(not part or "+" in part or "#" in part for part in reason.split("/"))
        ):
            raise ConfigError(
                source="settings",
                path=f"{where}.reason_match",
                reason="a metric name of the cell, no wildcards or empty levels",
                value=reason,
            )
    levels = rule.match.split("/")
    data_at = next((i for i, level in enumerate(levels) if i > 0 and level == ClassWord.data.value), None)
    cell_filter = "/".join(levels[:data_at]) if data_at is not None else None
    return _Rule(index=index, rule=rule, codes=codes, cell_filter=cell_filter)


def _route_of(topic: str, rules: Sequence[_Rule]) -> _Route | None:
    try:
        parsed = UnsTopic.from_str(topic)
    except TopicError:
        return None
    if parsed.class_word is not ClassWord.data:
        return None
    path, name = parsed.equipment_path, parsed.metric_name
    reason_of = [
        rule
        for rule in rules
        if rule.rule.kind == "state" and rule.rule.reason_match == name and rule.covers(path, name)
    ]
    matching = [rule for rule in rules if topic_matches(topic, rule.rule.match)]

    def first(kind: str) -> _Rule | None:
        # a rule's own reason sibling is never its state topic
        return next((r for r in matching if r.rule.kind == kind and r not in reason_of), None)

    state, counter, part_done = first("state"), first("counter"), first("part_done")
    if state is None and counter is None and part_done is None and not reason_of:
        return None
    return _Route(path=path, state=state, counter=counter, part_done=part_done, is_reason=bool(reason_of))


def _event_id(topic: str, ts_ms: int) -> str:
    # event ids hold no '/', and topics can be long: a digest of both
    digest = hashlib.blake2b(f"{topic}\n{ts_ms}".encode(), digest_size=12).hexdigest()
    return f"derived-{digest}"


def _whole(value: _Value, *, allow_negative: bool = False) -> int | None:
    """The value as a whole number, or None (not finite, fractional, negative unless allowed)."""
    if value is None:
        return None
    if isinstance(value, bool):
        number = int(value)
    elif isinstance(value, int):
        number = value
    else:
        if not math.isfinite(value) or not value.is_integer():
            return None
        number = int(value)
    return number if allow_negative or number >= 0 else None


def _delta(last: int, value: int, rollover: int) -> int:
    """Units counted from ``last`` to ``value``: forward, across a rollover, or since a reset."""
    if value >= last:
        return value - last
    if last > rollover / 2 and value < rollover / 2:
        return value + rollover - last
    return value


def _reason_text(value: _Value) -> str | None:
    """A reason code's text; zero, no value and non-finite numbers are no reason."""
    if value is None or value == 0:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return str(int(value))
