"""Pure core of MES intake: a topic and body into a validated event, or a rejection naming the field.

One rule for MQTT and HTTP: an event is accepted only under the hub's own enterprise (the plant
file's). The adapter subscribes to MES topics of every enterprise, so an event under another one
(``globex/...`` on an ``acme`` hub) is refused like any invalid event, field ``topic``: a dead
letter and a message on the errors topic, never silently dropped.
"""

from __future__ import annotations

import dataclasses

import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from model.mes import EVENT_MODELS, MesEvent
from model.topic import ClassWord, TopicError, UnsTopic

__all__ = ["Accepted", "Refused", "errors_topic", "read_event", "refusal_body"]


@dataclasses.dataclass(frozen=True, slots=True)
class Accepted:
    """A valid MES event and where it came from."""

    topic: str
    path: str
    event: str
    body: MesEvent
    raw: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    """An event that failed validation: ``field`` is the dotted path of the first problem."""

    topic: str
    event: str | None
    field: str
    reason: str
    raw: bytes
    problems: tuple[tuple[str, str], ...] = ()
    """Every (field, reason) pydantic found, for the HTTP 422 detail."""


def errors_topic(enterprise: str) -> str:
    """Where refused MES events are announced: ``<enterprise>/hub/mes/errors``."""
    return f"{enterprise}/hub/mes/errors"


def refusal_body(refused: Refused, now_ms: int) -> bytes:
    """The JSON announced on the errors topic for a refused event."""
    return orjson.dumps(
        {
            "topic": refused.topic,
            "event": refused.event,
            "field": refused.field,
            "reason": refused.reason,
            "problems": [{"field": field, "reason": reason} for field, reason in refused.problems],
            "timestamp_ms": now_ms,
        }
    )


def read_event(topic: str, raw: bytes, *, enterprise: str | None = None) -> Accepted | Refused | None:
    """Validate one message on ``<path>/mes/<event>``; None when the topic is not an MES event topic.

    ``enterprise``: the hub's; an event under another one is refused (None accepts any).
    """
    try:
        parsed = UnsTopic.from_str(topic)
    except TopicError:
        return None
    if parsed.class_word is not ClassWord.mes or parsed.path[1:2] == ("hub",):
        return None  # <enterprise>/hub/... is the hub's own status tree (our errors topic among it)
    event = parsed.metric_name
    if enterprise is not None and parsed.path[0] != enterprise:
        reason = f"enterprise {parsed.path[0]!r} is not this hub's ({enterprise!r}): publish under {enterprise}/..."
        return Refused(topic, event, "topic", reason, raw)
    model = EVENT_MODELS.get(event)
    if model is None:
        known = ", ".join(sorted(EVENT_MODELS))
        return Refused(topic, event, "event", f"unknown MES event {event!r}; known: {known}", raw)
    try:
        body = model.model_validate_json(raw)
    except ValidationError as exc:
        problems = tuple(
            (".".join(str(part) for part in error["loc"]) or "body", _reason(error)) for error in exc.errors()
        )
        field, reason = problems[0]
        return Refused(topic, event, field, reason, raw, problems)
    return Accepted(topic, parsed.equipment_path, event, body, raw)


def _reason(error: ErrorDetails) -> str:
    return str(error["msg"]).removeprefix("Value error, ")
