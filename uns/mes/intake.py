"""Pure core of MES intake: a topic and body into a validated event, or a rejection naming the field.

One rule for MQTT and HTTP: an event is accepted only under the hub's own enterprise (the plant
file's). The adapter subscribes to MES topics of every enterprise, so an event under another one
(``globex/...`` on an ``acme`` hub) is refused like any invalid event, field ``topic``: a dead
letter and a message on the errors topic, never silently dropped.

Times in a body are epoch milliseconds, or ISO 8601 strings read by the query API's parser
(``uns.query.timespec.parse_time``; with an offset or ``Z``, else UTC): ``"timestamp_ms":
"2026-11-24T07:00:00+01:00"`` is stored as ``1764568800000``. The raw body is kept as sent (its hash
is the idempotency key, the dead letter shows it).
"""

from __future__ import annotations

import dataclasses

import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from model.mes import EVENT_MODELS, MesEvent
from model.topic import ClassWord, TopicError, UnsTopic
from uns.clock import EPOCH, epoch_ms
from uns.errors import BadArgument
from uns.query.timespec import UTC_ZONE, parse_time

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
        text = _epoch_times(raw)
    except BadArgument as exc:
        return Refused(topic, event, exc.field, exc.reason, raw, ((exc.field, exc.reason),))
    try:
        body = model.model_validate_json(text)
    except ValidationError as exc:
        problems = tuple(
            (".".join(str(part) for part in error["loc"]) or "body", _reason(error)) for error in exc.errors()
        )
        field, reason = problems[0]
        return Refused(topic, event, field, reason, raw, problems)
    return Accepted(topic, parsed.equipment_path, event, body, raw)


_TIME_FIELDS = (
    "timestamp_ms",
    "start_ms",
    "end_ms",
    "planned_start_ms",
    "planned_end_ms",
    "period_start_ms",
    "opened_ms",
    "started_ms",
    "closed_ms",
)


def _epoch_times(raw: bytes) -> bytes:
    """``raw`` with ISO 8601 times (top level and in ``breaks``) turned into epoch ms; as it was when there are none.

    Raises:
        BadArgument: naming the field (``timestamp_ms``, ``breaks.0.end_ms``) of a string that is no time.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw  # the model's own parse names the problem
    if not isinstance(body, dict):
        return raw
    changed = _convert(body, "")
    breaks = body.get("breaks")
    if isinstance(breaks, list):
        for index, item in enumerate(breaks):
            if isinstance(item, dict):
                changed = _convert(item, f"breaks.{index}.") or changed
    return orjson.dumps(body) if changed else raw


def _convert(body: dict[str, object], prefix: str) -> bool:
    changed = False
    for key in _TIME_FIELDS:
        value = body.get(key)
        if isinstance(value, str):
            body[key] = _epoch_ms(value, prefix + key)
            changed = True
    return changed


def _epoch_ms(text: str, field: str) -> int:
    cleaned = text.strip().lower()
    if cleaned.startswith(("now", "-", "+")):  # the query API's relative forms mean nothing in a stored event
        raise BadArgument(
            field, f"cannot read {text!r} as a time: give epoch ms or ISO 8601, e.g. 2026-11-24T07:00:00Z"
        )
    when = parse_time(text, now=EPOCH, tz=UTC_ZONE, field=field)
    return epoch_ms(when)


def _reason(error: ErrorDetails) -> str:
    return str(error["msg"]).removeprefix("Value error, ")
