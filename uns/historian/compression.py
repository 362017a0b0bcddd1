"""Deadband and swinging-door compression of numeric series: which samples to store (pure, no I/O, no clock).

One ``Compressor`` serves every topic: the first ``CompressionRule`` whose ``match`` filter matches
a topic decides its method; topics no rule matches pass through untouched. Items are opaque
(``T``: a row, a message): the compressor only sees their topic, time and value.

Swinging door (Bristol 1990, OSIsoft PI's "compression deviation"): from the last stored point,
two doors bound the slopes of every line that stays within ``deviation`` of all points seen since.
A new point inside the doors becomes the held point; one outside them stores the held point and
restarts the doors from it. So the straight line between two stored points is within ``deviation``
of every input point between them.

``max_interval_s`` bounds the gap between stored points: the first point at least that long after
the last stored one is stored (for the swinging door, it or the held point before it). The
compressor never reads a clock: a series that goes quiet keeps its held point until the next
sample, ``expire(now_ms)`` or ``flush()``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Generic, TypeVar

from model.config import CompressionRule
from uns.mqtt.filters import topic_matches

__all__ = ["Compressor"]

T = TypeVar("T")


@dataclasses.dataclass(slots=True)
class _Point(Generic[T]):
    ts_ms: int
    value: float
    item: T


@dataclasses.dataclass(slots=True)
class _State(Generic[T]):
    """One topic's corridor: the last stored point, the held one, and the door slopes (value per ms)."""

    stored: _Point[T]
    held: _Point[T] | None = None
    upper: float = float("inf")
    lower: float = float("-inf")


class Compressor(Generic[T]):
    """Decides, sample by sample, which items of compressible series to store.

    Args:
        rules: the historian's compression rules, first match wins.
    """

    def __init__(self, *, rules: Sequence[CompressionRule]) -> None:
        self._rules = tuple(rules)
        self._rule_of: dict[str, CompressionRule | None] = {}
        self._states: dict[str, _State[T]] = {}
        self.offered = 0
        """Items offered to a compressible (ruled) topic so far."""
        self.stored = 0
        """Of those, items handed back to store (the rest were dropped or are held)."""

    def rule_for(self, topic: str) -> CompressionRule | None:
        """The rule governing ``topic``, or None when it passes through."""
        try:
            return self._rule_of[topic]
        except KeyError:
            rule = next((r for r in self._rules if topic_matches(topic, r.match)), None)
            self._rule_of[topic] = rule
            return rule

    def offer(self, topic: str, ts_ms: int, value: float | None, item: T) -> list[T]:
        """Offer one sample; returns the items to store now, oldest first.

        Args:
            topic: the UNS topic of the series.
            ts_ms: the sample time, epoch milliseconds.
            value: the number to compress on; None when it is not compressible (bad or stale
                quality, not a number): anything held is released with it and the corridor restarts.
            item: what to hand back when the sample is to be stored.
        """
        rule = self.rule_for(topic)
        if rule is None:
            return [item]
        self.offered += 1
        kept = self._offer(topic, rule, _Point(ts_ms, value if value is not None else math.nan, item))
        self.stored += len(kept)
        return kept

    def _offer(self, topic: str, rule: CompressionRule, point: _Point[T]) -> list[T]:
        state = self._states.get(topic)
        compressible = math.isfinite(point.value)
        if state is None:
            if compressible:
                self._states[topic] = _State(stored=point)
            return [point.item]
        if not compressible or point.ts_ms <= (state.held or state.stored).ts_ms:
            # not a number to draw lines through (or out of order): store it as is, restart after it
            del self._states[topic]
            released = [state.held, point] if state.held is not None else [point]
            released.sort(key=lambda p: p.ts_ms)
            return [p.item for p in released]
        if rule.method == "deadband":
            return self._deadband(state, point, rule)
        return self._door(state, point, rule)

    def expire(self, now_ms: int) -> list[T]:
        """Store held points whose series stored nothing for ``max_interval_s`` before ``now_ms``."""
        released: list[_Point[T]] = []
        for topic, state in self._states.items():
            rule = self._rule_of.get(topic)
            held = state.held
            if rule is not None and held is not None and now_ms - state.stored.ts_ms >= rule.max_interval_s * 1000:
                released.append(held)
                self._restart(state, held)
        self.stored += len(released)
        released.sort(key=lambda p: p.ts_ms)
        return [p.item for p in released]

    def flush(self) -> list[T]:
        """Release every held item (on shutdown), oldest first; corridors restart from them."""
        released: list[_Point[T]] = []
        for state in self._states.values():
            if state.held is not None:
                released.append(state.held)
                self._restart(state, state.held)
        self.stored += len(released)
        released.sort(key=lambda p: p.ts_ms)
        return [p.item for p in released]

    @staticmethod
    def _restart(state: _State[T], point: _Point[T]) -> None:
        state.stored, state.held = point, None
        state.upper, state.lower = float("inf"), float("-inf")

    @staticmethod
    def _deadband(state: _State[T], point: _Point[T], rule: CompressionRule) -> list[T]:
        moved = abs(point.value - state.stored.value) > rule.deviation
        if moved or point.ts_ms - state.stored.ts_ms >= rule.max_interval_s * 1000:
            state.stored = point
            return [point.item]
        return []

    def _door(self, state: _State[T], point: _Point[T], rule: CompressionRule) -> list[T]:
        kept: list[T] = []
        if not self._inside(state, point):
            # the corridor closed: store the held point (its line fits everything before it) and restart there
            held = state.held
            if held is not None:  # always set here: with no held point the doors are wide open
                kept.append(held.item)
                self._restart(state, held)
        if point.ts_ms - state.stored.ts_ms >= rule.max_interval_s * 1000:
            kept.append(point.item)
            self._restart(state, point)
            return kept
        span = point.ts_ms - state.stored.ts_ms
        state.upper = min(state.upper, (point.value + rule.deviation - state.stored.value) / span)
        state.lower = max(state.lower, (point.value - rule.deviation - state.stored.value) / span)
        state.held = point
        return kept

    @staticmethod
    def _inside(state: _State[T], point: _Point[T]) -> bool:
        slope = (point.value - state.stored.value) / (point.ts_ms - state.stored.ts_ms)
        return state.lower <= slope <= state.upper
