"""A computed tag over given input messages: the running engine's own ``Engine``, fed from history (pure).

``try_tag`` evaluates it once on the inputs' current messages; ``replay_tag`` runs it over a stretch of
history in time order, with its ``every`` ticks at the messages' clock, and sums up what it would
have published. The tag starts fresh (no window, no counter), as after a reload.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

from model.envelope import read_envelope
from uns.transforms.engine import Engine
from uns.transforms.plan import TagPlan

__all__ = ["MAX_POINTS", "TagReplay", "replay_tag", "try_tag"]

MAX_POINTS = 200
"""At most this many results are kept (the last ones); all are counted."""

_MAX_TICKS = 100_000


@dataclasses.dataclass(slots=True)
class TagReplay:
    """What the tag published: how many results, the last ``MAX_POINTS`` (ms, value, quality), range and errors."""

    messages: int = 0
    results: int = 0
    evaluations: int = 0
    errors: int = 0
    last_error: str | None = None
    reason: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    points: list[tuple[int, object, str]] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    """Inputs without any value (alias and topic): the tag is not evaluated until each has one."""

    def to_json(self) -> dict[str, object]:
        """The API's shape."""
        return dataclasses.asdict(self)

    def _take(self, results: list[tuple[str, bytes]]) -> None:
        for _, body in results:
            read = read_envelope(body, now_ms=0)  # the engine's own envelopes: always stamped
            value = read.value
            self.results += 1
            self.points.append((read.timestamp_ms, value, read.quality))
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                self.minimum = value if self.minimum is None else min(self.minimum, value)
                self.maximum = value if self.maximum is None else max(self.maximum, value)
        del self.points[:-MAX_POINTS]

    def _close(self, engine: Engine, plan: TagPlan, seen: set[str]) -> TagReplay:
        health = engine.health()["computed"]
        status = health.get(plan.key, {}) if isinstance(health, Mapping) else {}
        if isinstance(status, Mapping):
            self.evaluations = int(status.get("evaluations") or 0)
            self.errors = int(status.get("errors") or 0)
            self.last_error = status.get("last_error")
            self.reason = status.get("reason")
        self.missing = [f"{i.alias} ({i.topic})" for i in plan.inputs if i.topic not in seen]
        return self


def try_tag(plan: TagPlan, current: Mapping[str, bytes], *, now_ms: int) -> TagReplay:
    """The tag evaluated on each input topic's current message (``current``: topic -> payload)."""
    engine = Engine([plan])
    out = TagReplay()
    seen = set()
    for item in plan.inputs:
        payload = current.get(item.topic)
        if payload is not None and item.topic not in seen:
            seen.add(item.topic)
            out.messages += 1
            out._take(engine.on_message(item.topic, payload, now_ms=now_ms))
    del out.points[:-1]  # only the last evaluation is the answer
    return out._close(engine, plan, seen)


def replay_tag(plan: TagPlan, messages: Iterable[tuple[int, str, bytes]], *, end_ms: int) -> TagReplay:
    """The tag over ``messages`` (time ms, topic, payload; oldest first), ticking every ``every`` until ``end_ms``.

    At most ``_MAX_TICKS`` ticks are run (a 100 ms period over days would be millions); later ones are skipped.
    """
    engine = Engine([plan])
    out = TagReplay()
    seen: set[str] = set()
    every = plan.every_ms
    next_tick: int | None = None
    ticks = 0

    def tick_until(limit_ms: int) -> None:
        nonlocal next_tick, ticks
        while every is not None and next_tick is not None and next_tick < limit_ms and ticks < _MAX_TICKS:
            out._take(engine.tick(next_tick))
            next_tick += every
            ticks += 1

    for at_ms, topic, payload in messages:
        tick_until(at_ms + 1)
        seen.add(topic)
        out.messages += 1
        out._take(engine.on_message(topic, payload, now_ms=at_ms))
        if every is not None and next_tick is None:
            next_tick = at_ms + every
    tick_until(end_ms)
    return out._close(engine, plan, seen)
