"""The ``rules:`` section of the settings file: triggers, conditions and actions (docs/rules.md)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from model.equipment import _check_timezone

__all__ = [
    "Action",
    "AlarmAction",
    "CronTrigger",
    "MesEventAction",
    "MesTrigger",
    "PublishAction",
    "Rule",
    "StateTrigger",
    "TopicTrigger",
    "Trigger",
    "ValueTrigger",
    "WebhookAction",
    "WriteAction",
]

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def _check_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a slug ([a-z0-9][a-z0-9_-]*)")
    return value


def _check_cron(value: str) -> str:
    from croniter import croniter  # type: ignore[import-untyped]  # only the check and the scheduler need it

    if not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a cron schedule (minute hour day month weekday, e.g. '0 6 * * *')")
    return value


_Name = Annotated[str, AfterValidator(_check_name)]
_Filter = Annotated[str, Field(min_length=1)]  # checked as an MQTT filter by uns.rules.check


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CronTrigger(_Model):
    """Fire on a cron schedule in a time zone."""

    kind: Literal["cron"] = Field(description="cron: on a schedule.")
    schedule: Annotated[str, AfterValidator(_check_cron)] = Field(
        description="Cron schedule: minute hour day-of-month month day-of-week, e.g. '0 6 * * 1-5'."
    )
    timezone: Annotated[str, AfterValidator(_check_timezone)] | None = Field(
        default=None, description="IANA time zone of the schedule; unset: the plant's first site's time zone."
    )


class ValueTrigger(_Model):
    """Fire when a numeric value passes a limit for ``for_s``; clear when it is back past the hysteresis."""

    kind: Literal["value"] = Field(description="value: a number past a limit.")
    topic: _Filter = Field(description="UNS data topic (or filter: each matching topic is watched on its own).")
    above: float | None = Field(default=None, description="Active while the value is above this.")
    below: float | None = Field(default=None, description="Active while the value is below this.")
    hysteresis: float = Field(
        default=0.0, ge=0, description="How far back past the limit the value must go to clear, in its unit."
    )
    for_s: float = Field(default=0.0, ge=0, description="How long the value must stay past the limit, seconds.")

    @model_validator(mode="after")
    def _one_limit(self) -> ValueTrigger:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        return self


class StateTrigger(_Model):
    """Fire when a value changes (to one of ``to``, when given), after staying there ``for_s``."""

    kind: Literal["state"] = Field(description="state: a value changes.")
    topic: _Filter = Field(description="UNS data topic (or filter) holding a state code, a flag or a text.")
    to: list[float | bool | str] | None = Field(default=None, description="Fire only on a change to one of these.")
    for_s: float = Field(default=0.0, ge=0, description="How long the new state must last before firing, seconds.")


class MesTrigger(_Model):
    """Fire on an MES event: a work order completed, or a machine down longer than ``min_minutes``."""

    kind: Literal["mes"] = Field(description="mes: an MES event.")
    event: Literal["order_completed", "downtime"] = Field(
        description="order_completed: a work_order with action complete; downtime: a machine_state outside "
        "producing (10000-29999) lasting min_minutes."
    )
    path: _Filter = Field(default="#", description="Equipment path filter, e.g. acme/dallas/+/line1 or acme/#.")
    min_minutes: float = Field(default=0.0, ge=0, description="event downtime: how long the stop must last, minutes.")
    states: list[tuple[int, int]] | None = Field(
        default=None,
        description="event downtime: inclusive [low, high] state code ranges that count as down, e.g. "
        "[[180000, 229999]] for technical stops; unset: every state outside producing.",
    )


class TopicTrigger(_Model):
    """Fire on every message on a topic filter."""

    kind: Literal["topic"] = Field(description="topic: any message on a filter.")
    filter: _Filter = Field(description="MQTT topic filter, e.g. acme/+/+/+/+/mes/quality_inspection.")


Trigger = Annotated[CronTrigger | ValueTrigger | StateTrigger | MesTrigger | TopicTrigger, Field(discriminator="kind")]


class PublishAction(_Model):
    """Publish a UNS message; ``payload`` is JSON with ``${...}`` placeholders filled from the firing."""

    kind: Literal["publish"] = Field(description="publish: a UNS message.")
    topic: str = Field(min_length=1, description="Topic; ${...} placeholders allowed (each level percent-free).")
    payload: object = Field(default=None, description="JSON template of the body; unset: the firing itself.")
    retain: bool = Field(default=False, description="Publish retained.")
    qos: int = Field(default=1, ge=0, le=1, description="QoS 0 or 1.")


class MesEventAction(_Model):
    """Post an MES event through the intake (its MQTT topic ``<path>/mes/<event>``)."""

    kind: Literal["mes_event"] = Field(description="mes_event: an MES event through the intake.")
    path: str = Field(min_length=1, description="Equipment path; ${...} placeholders allowed.")
    event: _Name = Field(description="MES event name (work_order, machine_state, ... docs/mes.md).")
    body: dict[str, object] = Field(description="JSON template of the body; timestamp_ms is added when missing.")


class WriteAction(_Model):
    """Write a machine value through Sparkplug DCMD to the device bound to ``path``."""

    kind: Literal["write"] = Field(description="write: a Sparkplug DCMD to a machine.")
    path: str = Field(min_length=1, description="Equipment path of a bound Sparkplug device (or node).")
    metric: str = Field(min_length=1, description="Sparkplug metric name, e.g. Setpoints/Speed.")
    value: object = Field(description="Value template (a number, bool, text or ${...}).")
    datatype: Literal["Boolean", "Int32", "Int64", "Float", "Double", "String"] = Field(
        default="Double", description="Sparkplug datatype of the written value."
    )
    role: Literal["app", "host", "admin"] = Field(
        default="app",
        description="Role the write runs as: it is refused unless that role may publish <path>/cmd/<metric> "
        "(broker.yaml's app_cmd_topics for app).",
    )
    min_interval_s: float = Field(
        default=1.0, ge=0, description="Least time between two writes of this action; one sooner is dropped."
    )
    dry_run: bool = Field(default=False, description="Log and count the DCMD without sending it.")


class WebhookAction(_Model):
    """Call an HTTP endpoint with a templated JSON body; retried with backoff on 5xx, 429 and network errors."""

    kind: Literal["webhook"] = Field(description="webhook: an HTTP request.")
    url: str = Field(pattern=r"^https?://", description="URL; ${...} placeholders are percent-encoded.")
    method: Literal["POST", "PUT", "PATCH"] = Field(default="POST", description="HTTP method.")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers; ${...} placeholders allowed.")
    body: object = Field(default=None, description="JSON template of the body; unset: the firing itself.")
    timeout_s: float = Field(default=5.0, gt=0, description="Timeout of one attempt, seconds.")
    attempts: int = Field(default=3, ge=1, le=20, description="Attempts at most.")


class AlarmAction(_Model):
    """Raise an alarm when the rule fires and clear it when its trigger clears (or ``clear: true``)."""

    kind: Literal["alarm"] = Field(description="alarm: raise or clear an alarm.")
    path: str = Field(min_length=1, description="Equipment path of the alarm; ${path} is the trigger's path.")
    name: _Name = Field(description="Alarm name, the last level of <path>/alarm/<name>.")
    priority: int = Field(default=500, ge=1, le=1000, description="1 (lowest) .. 1000 (highest), as OPC UA A&C.")
    message: str = Field(default="", description="Text; ${...} placeholders allowed.")
    clear: bool = Field(default=False, description="This action clears the alarm instead of raising it.")


Action = Annotated[
    PublishAction | MesEventAction | WriteAction | WebhookAction | AlarmAction, Field(discriminator="kind")
]


class Rule(_Model):
    """A trigger, an optional condition and the actions it runs."""

    name: _Name = Field(description="Unique rule name (a slug).")
    enabled: bool = Field(default=True, description="A disabled rule is kept but never fires.")
    trigger: Trigger = Field(description="What fires the rule.")
    condition: str | None = Field(
        default=None, description="Expression over the firing (value, topic, path ...) that must be true to act."
    )
    actions: list[Action] = Field(min_length=1, description="What the rule does, in order.")
