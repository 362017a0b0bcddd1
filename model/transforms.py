"""Computed tags in the settings file (``transforms:``): an expression over UNS topics, published as ``data``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from model.duration import DURATION_PATTERN
from model.topic import TopicError, UnsTopic

__all__ = ["ComputedTag", "TransformInput"]


def _input_shorthand(value: object) -> object:
    # `speed: acme/.../data/Speed` is short for `speed: {topic: acme/.../data/Speed}`
    return {"topic": value} if isinstance(value, str) else value


class TransformInput(BaseModel):
    """One input of a computed tag: a UNS topic whose envelope ``value`` the expression reads by its alias."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(
        min_length=1,
        description="A UNS data or kpi topic, e.g. acme/dallas/packaging/line1/filler/data/Temperature.",
    )
    unit: str | None = Field(
        default=None,
        description="The unit the expression sees this input in (e.g. degF); its values are converted from "
        "source_unit. Unset: the values as they arrive.",
    )
    source_unit: str | None = Field(
        default=None,
        description="The unit the input arrives in; unset: the plant file's unit for the metric, else the "
        "envelope's own unit.",
    )


_Input = Annotated[TransformInput, BeforeValidator(_input_shorthand)]


class ComputedTag(BaseModel):
    """A UNS metric computed from other UNS topics (docs/transforms.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1, description="Metric name under path's data class (Sparkplug '/' levels allowed), e.g. Speed_ppm."
    )
    path: str = Field(
        min_length=1, description="Equipment path the result is published under, e.g. acme/dallas/packaging/line1."
    )
    expression: str = Field(
        min_length=1, max_length=2000, description="The expression, e.g. 'rate(count, \"1m\")' (docs/transforms.md)."
    )
    inputs: dict[str, _Input] = Field(
        min_length=1,
        description="Alias (the name used in the expression) -> input topic, or {topic, unit, source_unit}.",
    )
    unit: str | None = Field(default=None, description="Unit of the result, written in its envelope (e.g. degF).")
    every: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        description="Also re-evaluate this often (e.g. \"5s\") with the inputs' last values at the hub's clock, so "
        "rate() falls to 0 and since_change() grows while the inputs are silent; unset: only when an input changes.",
    )
    enabled: bool = Field(default=True, description="False keeps the tag in the file but does not run it.")
    description: str = Field(default="", description="What the tag means, for people.")

    @model_validator(mode="after")
    def _check_topics(self) -> ComputedTag:
        try:
            out = UnsTopic.for_metric(self.path, self.name)
        except TopicError as exc:
            raise ValueError(f"name/path: {exc}") from None
        for alias, item in self.inputs.items():
            if not alias.isidentifier() or alias.startswith("_"):
                raise ValueError(f"inputs.{alias}: an alias must be a name like temp or count_1")
            try:
                UnsTopic.from_str(item.topic)
            except TopicError as exc:
                raise ValueError(f"inputs.{alias}.topic: {exc}") from None
            if item.topic == str(out):
                raise ValueError(f"inputs.{alias}.topic: the tag's own output {out}")
        return self

    @property
    def topic(self) -> str:
        """The UNS topic the result is published on: ``<path>/data/<name>``."""
        return str(UnsTopic.for_metric(self.path, self.name))
