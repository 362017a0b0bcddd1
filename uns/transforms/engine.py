"""The pure core of computed tags: input envelopes in, result envelopes out; no I/O, no clock reads.

Each input message updates the tags reading its topic; a tag is evaluated once all its inputs have
a value, stamped with its newest input's time, and published when its value or quality changes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from model.envelope import EnvelopeError, Quality, ReadingFields, build_envelope, infer_datatype, read_envelope
from uns.logs import RateLimitedLog
from uns.transforms.errors import EvaluationError
from uns.transforms.expr import ExpressionState
from uns.transforms.plan import InputPlan, TagPlan
from uns.transforms.units import UnitError, conversion

__all__ = ["SOURCE", "Engine", "TagStatus"]

log = logging.getLogger(__name__)

SOURCE = "transforms"
"""The ``source`` of every envelope a computed tag publishes."""

_RANK = {Quality.good: 0, Quality.uncertain: 1, Quality.bad: 2, Quality.stale: 2}
_WORST = (Quality.good, Quality.uncertain, Quality.bad)
_QUALITIES = {q.value: q for q in Quality}
_UNSET = object()
_SCALARS = (bool, int, float, str)


@dataclass(slots=True)
class TagStatus:
    """A running tag's counters and last result, shown in the health document."""

    evaluations: int = 0
    errors: int = 0
    published: int = 0
    last_value: object = None
    last_quality: str | None = None
    last_error: str | None = None
    reason: str | None = None
    """Why the last result was not good (which input, what quality), or None."""


@dataclass(slots=True)
class _Tag:
    plan: TagPlan
    state: ExpressionState
    values: dict[str, Any] = field(default_factory=dict)
    newest: int = -(2**63)
    """The newest input time seen (inputs' times only go forward, so a running maximum)."""
    worse: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Inputs that are not good: alias -> (quality rank, reason); a null value is rank 2 (bad)."""
    nulls: set[str] = field(default_factory=set)
    evaluated_ms: int = -(2**63)
    """The hub's clock at the last evaluation, for ``every``."""
    last: object = _UNSET
    status: TagStatus = field(default_factory=TagStatus)


class Engine:
    """Computed tags over the latest input envelopes; ``on_message`` returns what to publish."""

    def __init__(self, plans: Iterable[TagPlan], *, keep: Engine | None = None) -> None:
        # on a reload, a tag whose configuration did not change keeps its values and state
        kept = {} if keep is None else {t.plan.key: t for t in keep._tags}
        self._tags: list[_Tag] = []
        self._fresh: set[str] = set()
        for plan in plans:
            old = kept.get(plan.key)
            if old is not None and old.plan.config == plan.config:
                self._tags.append(old)
            else:
                self._tags.append(_Tag(plan=plan, state=plan.expression.new_state()))
                self._fresh.add(plan.key)
        self._periodic = [tag for tag in self._tags if tag.plan.every_ms is not None]
        self._readers: dict[str, list[tuple[_Tag, InputPlan]]] = {}
        for tag in self._tags:
            for item in tag.plan.inputs:
                self._readers.setdefault(item.topic, []).append((tag, item))
        self._warn: RateLimitedLog = RateLimitedLog(log) if keep is None else keep._warn
        self.received: int = 0 if keep is None else keep.received
        self.rejected: int = 0 if keep is None else keep.rejected

    @property
    def topics(self) -> list[str]:
        """Every input topic, to subscribe to."""
        return sorted(self._readers)

    @property
    def plans(self) -> list[TagPlan]:
        """The running tags."""
        return [tag.plan for tag in self._tags]

    def on_message(
        self, topic: str, payload: bytes, *, now_ms: int, decoded: ReadingFields | None = None
    ) -> list[tuple[str, bytes]]:
        """The results to publish (topic, envelope) after this input message; ``now_ms`` stamps one without time.

        ``decoded``: the envelope as its in-process publisher read it (``Message.decoded``), taken
        instead of parsing ``payload`` again.
        """
        readers = self._readers.get(topic)
        if readers is None:
            return []
        self.received += 1
        return self._feed(topic, payload, now_ms, readers, decoded)

    def prime(self, topic: str, payload: bytes, *, now_ms: int) -> list[tuple[str, bytes]]:
        """Feed an input's last payload to the tags this engine did not keep from the previous one."""
        readers = [r for r in self._readers.get(topic, ()) if r[0].plan.key in self._fresh]
        return self._feed(topic, payload, now_ms, readers) if readers else []

    def _feed(
        self,
        topic: str,
        payload: bytes,
        now_ms: int,
        readers: list[tuple[_Tag, InputPlan]],
        decoded: ReadingFields | None = None,
    ) -> list[tuple[str, bytes]]:
        read = self._read(topic, payload, now_ms) if decoded is None else self._take_decoded(decoded)
        if read is None:
            return []
        value, stamp, quality, unit = read
        out: list[tuple[str, bytes]] = []
        for tag, item in readers:
            self._take(tag, item, value, stamp, quality, unit)
            if len(tag.values) == len(tag.plan.inputs):
                tag.evaluated_ms = now_ms
                result = self._evaluate(tag, tag.newest)
                if result is not None:
                    out.append(result)
        return out

    def _read(self, topic: str, payload: bytes, now_ms: int) -> tuple[Any, int, Quality, str | None] | None:
        try:
            read = read_envelope(payload, now_ms=now_ms)  # the hub's one reader: one set of rules
        except EnvelopeError as exc:
            self._reject(topic, f"not a value envelope: {exc}")
            return None
        return read.value, read.timestamp_ms, _QUALITIES[read.quality], read.unit

    @staticmethod
    def _take_decoded(decoded: ReadingFields) -> tuple[Any, int, Quality, str | None]:
        # the one reader's result for the JSON (read_fields): no future limit here, as for the JSON
        return decoded[0], decoded[1], _QUALITIES[decoded[2]], decoded[4]

    def _reject(self, topic: str, reason: str) -> None:
        # counted and logged; the input keeps its last good value
        self.rejected += 1
        self._warn.warning(("rejected", topic), "computed tags: input %s refused: %s", topic, reason)

    def _take(self, tag: _Tag, item: InputPlan, value: Any, stamp: int, quality: Quality, unit: str | None) -> None:
        alias = item.alias
        note = None
        if item.unit is not None and isinstance(value, int | float) and not isinstance(value, bool):
            convert = item.convert
            if convert is None and unit is not None and unit != item.unit:
                try:
                    convert = conversion(unit, item.unit)
                except UnitError as exc:
                    quality, note = Quality.bad, f"input {alias} ({item.topic}): {exc}"
            if convert is not None:
                value = convert(value)
        tag.values[alias] = value
        if stamp > tag.newest:
            tag.newest = stamp
        if value is None:
            tag.nulls.add(alias)
            quality = Quality.bad
        elif tag.nulls:
            tag.nulls.discard(alias)
        if quality is Quality.good and note is None:
            if tag.worse:
                tag.worse.pop(alias, None)
        else:
            tag.worse[alias] = (_RANK[quality], note or f"input {alias} ({item.topic}) is {quality.value}")

    def tick(self, now_ms: int) -> list[tuple[str, bytes]]:
        """Re-evaluate the tags with ``every`` whose period has passed, at ``now_ms`` (the hub's clock).

        Such an evaluation is stamped with ``now_ms`` (never earlier than the newest input), and its
        stateful functions see it as a sample of the inputs' last values at that time.
        """
        out: list[tuple[str, bytes]] = []
        for tag in self._periodic:
            every = tag.plan.every_ms
            if every is not None and now_ms - tag.evaluated_ms >= every and len(tag.values) == len(tag.plan.inputs):
                tag.evaluated_ms = now_ms
                result = self._evaluate(tag, max(now_ms, tag.newest))
                if result is not None:
                    out.append(result)
        return out

    @property
    def tick_ms(self) -> int | None:
        """How often ``tick`` has work: the shortest ``every``, or None."""
        periods = [tag.plan.every_ms for tag in self._periodic if tag.plan.every_ms is not None]
        return min(periods) if periods else None

    def _evaluate(self, tag: _Tag, stamp: int) -> tuple[str, bytes] | None:
        plan, status = tag.plan, tag.status
        quality, reason = Quality.good, None
        if tag.worse:
            quality = _WORST[max(rank for rank, _ in tag.worse.values())]
            reason = "; ".join(note for _, note in tag.worse.values())
        value: Any = None
        if not tag.nulls:
            status.evaluations += 1
            try:
                value = plan.expression.evaluate(tag.values, now_ms=stamp, state=tag.state)
            except EvaluationError as exc:
                status.errors += 1
                status.last_error = exc.reason
                self._warn.warning(
                    ("failed", plan.key), "computed tag %s failed: %s; inputs %s", plan.key, exc.reason, tag.values
                )
                quality, reason = Quality.bad, f"evaluation failed: {exc.reason}"
            if value.__class__ is float:
                if not math.isfinite(value):
                    quality, reason, value = Quality.bad, f"the result is {value}", None
            elif value is not None and not isinstance(value, _SCALARS):
                quality, reason, value = Quality.bad, f"the result is a {type(value).__name__}", None
        status.reason = reason
        if (value, quality) == tag.last:
            return None
        tag.last = (value, quality)
        status.last_value, status.last_quality = value, quality.value
        status.published += 1
        datatype = infer_datatype(value) or "Double"
        body = build_envelope(
            value=value,
            timestamp_ms=stamp,
            quality=quality,
            datatype=datatype,
            unit=plan.config.unit,
            source=SOURCE,
        )
        return plan.topic, orjson.dumps(body)

    def health(self) -> dict[str, object]:
        """Counters and every tag's last result, error and reason."""
        tags: dict[str, object] = {}
        for tag in self._tags:
            s = tag.status
            tags[tag.plan.key] = {
                "expression": tag.plan.config.expression,
                "value": s.last_value,
                "quality": s.last_quality,
                "evaluations": s.evaluations,
                "errors": s.errors,
                "published": s.published,
                "last_error": s.last_error,
                "reason": s.reason,
            }
        errors = sum(tag.status.errors for tag in self._tags)
        return {"tags": len(self._tags), "received": self.received, "rejected": self.rejected, "errors": errors} | {
            "computed": tags
        }
