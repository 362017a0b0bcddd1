"""Computed tags as loaded: each expression compiled, each unit conversion resolved, every topic checked.

Everything that can be refused is refused here, at load, with a ``ConfigError`` naming the tag,
the field and the value, so a running engine only meets run-time failures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from model.duration import duration_ms
from model.equipment import Plant
from model.topic import ClassWord, UnsTopic
from model.transforms import ComputedTag
from uns.errors import ConfigError
from uns.transforms.errors import ExpressionError
from uns.transforms.expr import Expression, compile_expression
from uns.transforms.units import Conversion, UnitError, check_unit, conversion

__all__ = ["InputPlan", "TagPlan", "plan_tags"]

_INPUT_WORDS = (ClassWord.data, ClassWord.kpi)
_MIN_EVERY_MS = 100  # a shorter period would only burn CPU: evaluations follow the hub's tick


@dataclass(frozen=True, slots=True)
class InputPlan:
    """One input: its alias, topic, and how its values are converted."""

    alias: str
    topic: str
    unit: str | None
    """The unit the expression sees the value in (None: as it arrives)."""
    convert: Conversion | None
    """Resolved at load from source_unit or the plant file; None: by the envelope's unit, if any."""


@dataclass(frozen=True, slots=True)
class TagPlan:
    """A computed tag ready to run."""

    config: ComputedTag
    key: str
    """``transforms[<name>]`` as it is named in errors, logs and health: the tag's output topic."""
    topic: str
    expression: Expression
    inputs: tuple[InputPlan, ...]
    every_ms: int | None = None
    """Re-evaluated this often at the hub's clock (``every``), or only on input messages."""


def _fail(source: str, path: str, reason: str, value: object = None) -> ConfigError:
    return ConfigError(source=source, path=path, reason=reason, value=value)


def _plan_input(tag: ComputedTag, alias: str, plant: Plant | None, source: str, where: str) -> InputPlan:
    item = tag.inputs[alias]
    topic = UnsTopic.from_str(item.topic)
    field = f"{where}.inputs.{alias}"
    if topic.class_word not in _INPUT_WORDS:
        raise _fail(source, f"{field}.topic", "must be a data or kpi topic", item.topic)
    if plant is not None and plant.equipment(topic.equipment_path) is None:
        reason = f"unknown topic: no equipment {topic.equipment_path!r} in the plant file"
        raise _fail(source, f"{field}.topic", reason, item.topic)
    convert = None
    if item.unit is not None:
        arrives = item.source_unit
        if arrives is None and plant is not None:
            arrives = plant.unit_of(topic.equipment_path, topic.metric_name)
        try:
            check_unit(item.unit)
            if arrives is not None and arrives != item.unit:
                convert = conversion(arrives, item.unit)
        except UnitError as exc:
            raise _fail(source, f"{field}.unit", str(exc), item.unit) from None
    elif item.source_unit is not None:
        raise _fail(source, f"{field}.source_unit", "needs unit: the unit to convert to", item.source_unit)
    return InputPlan(alias=alias, topic=item.topic, unit=item.unit, convert=convert)


def _plan_tag(tag: ComputedTag, plant: Plant | None, source: str, where: str) -> TagPlan:
    if plant is not None and plant.equipment(tag.path) is None:
        raise _fail(source, f"{where}.path", "no such equipment in the plant file", tag.path)
    try:
        expression = compile_expression(tag.expression, names=tag.inputs.keys())
    except ExpressionError as exc:
        raise _fail(source, f"{where}.expression", f"column {exc.column}: {exc.construct}", tag.expression) from None
    unused = sorted(set(tag.inputs) - expression.names)
    if unused:
        raise _fail(source, f"{where}.inputs", f"not used by the expression: {', '.join(unused)}")
    if tag.unit is not None:
        try:
            check_unit(tag.unit)
        except UnitError as exc:
            raise _fail(source, f"{where}.unit", str(exc), tag.unit) from None
    inputs = tuple(_plan_input(tag, alias, plant, source, where) for alias in tag.inputs)
    every_ms = None
    if tag.every is not None:
        try:
            every_ms = max(duration_ms(tag.every), _MIN_EVERY_MS)
        except ValueError as exc:
            raise _fail(source, f"{where}.every", str(exc), tag.every) from None
    return TagPlan(config=tag, key=tag.topic, topic=tag.topic, expression=expression, inputs=inputs, every_ms=every_ms)


def plan_tags(tags: Sequence[ComputedTag], *, plant: Plant | None, source: str = "settings") -> list[TagPlan]:
    """Compile every enabled tag; refuse duplicates and cycles (a tag reading itself through others).

    Raises:
        ConfigError: ``settings: transforms[Speed_ppm].expression: column 3: ...``.
    """
    plans: list[TagPlan] = []
    seen: set[str] = set()
    for tag in tags:
        where = f"transforms[{tag.name}]"
        if tag.topic in seen:
            raise _fail(source, f"{where}.name", "a second tag publishes the same topic", tag.topic)
        seen.add(tag.topic)
        if tag.enabled:
            plans.append(_plan_tag(tag, plant, source, where))
    _refuse_cycles(plans, source)
    return plans


def _refuse_cycles(plans: list[TagPlan], source: str) -> None:
    by_topic = {plan.topic: plan for plan in plans}
    reads = {plan.topic: [i.topic for i in plan.inputs if i.topic in by_topic] for plan in plans}
    done: set[str] = set()

    def visit(topic: str, trail: list[str]) -> None:
        if topic in trail:
            loop = " -> ".join([*trail[trail.index(topic) :], topic])
            where = f"transforms[{by_topic[topic].config.name}].inputs"
            raise _fail(source, where, f"computed tags read each other in a loop: {loop}")
        if topic in done:
            return
        for read in reads[topic]:
            visit(read, [*trail, topic])
        done.add(topic)

    for topic in reads:
        visit(topic, [])
