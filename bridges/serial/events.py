"""Frames as MES events: a scanned lot consumed, a weighed load produced (pure: templates, triggers, checks).

A field template names frame values (``${weight}``, ``${code}``, a named group); the body is checked
against the event's model (``model/mes.py``) here, so a refusal names the device and the field.
"""

from __future__ import annotations

import re

import orjson
from pydantic import ValidationError

from bridges.http.mapping import MappedEvent
from bridges.serial.protocols import Reading
from model.bridges.serial import SerialEvent
from model.mes import EVENT_MODELS
from uns.clock import at_epoch_ms

__all__ = ["EventError", "EventMaker"]

_TEMPLATE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class EventError(Exception):
    """A frame that should be an event but cannot: which event field, and why."""

    def __init__(self, event: str, field: str, reason: str) -> None:
        self.event = event
        self.field = field
        self.reason = reason
        super().__init__(f"{event}.{field}: {reason}")


class EventMaker:
    """One device's events; ``stable_load`` triggers remember whether the scale is loaded.

    Args:
        connector: the bridge's name (the events' ``source`` and the first part of their ``event_id``).
        device: the device id.
        events: the device's event configs.
    """

    def __init__(self, *, connector: str, device: str, events: list[SerialEvent]) -> None:
        self._connector = connector
        self._device = device
        self._events = events
        self._loaded = [False] * len(events)

    def make(self, reading: Reading, timestamp_ms: int) -> list[MappedEvent]:
        """The events this reading triggers; raises ``EventError`` for one whose body its model refuses."""
        out: list[MappedEvent] = []
        for index, event in enumerate(self._events):
            if event.trigger == "stable_load":
                weight = reading.fields.get("weight")
                if not isinstance(weight, float) or reading.stable is None:
                    continue  # an answer without a weight (busy, overload, a zero) changes nothing
                if weight < event.min_load:
                    self._loaded[index] = False  # unloaded (or below the load): the next load is a new event
                    continue
                if not reading.stable or self._loaded[index]:
                    continue
                self._loaded[index] = True
            elif not reading.fields:
                continue
            out.append(self._event(index, event, reading, timestamp_ms))
        return out

    def _event(self, index: int, event: SerialEvent, reading: Reading, timestamp_ms: int) -> MappedEvent:
        names: dict[str, object] = {
            **reading.fields,
            "device": self._device,
            "time": at_epoch_ms(timestamp_ms).strftime("%Y%m%d%H%M%S"),
        }
        event_id = f"{self._connector}:{self._device}:{index}:{timestamp_ms}"
        body: dict[str, object] = {**event.constants, "timestamp_ms": timestamp_ms, "event_id": event_id,
                                   "source": self._connector}  # fmt: skip
        for field, template in event.fields.items():
            body[field] = _fill(event.event, field, template, names)
        try:
            EVENT_MODELS[event.event].model_validate(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "(body)"
            raise EventError(event.event, field, f"{error['msg']} (got {body.get(str(error['loc'][0]))!r})") from None
        return MappedEvent(f"{event.equipment_path}/mes/{event.event}", orjson.dumps(body), event_id)


def _fill(event: str, field: str, template: str, names: dict[str, object]) -> object:
    whole = _TEMPLATE.fullmatch(template)
    if whole is not None:
        name = whole.group(1)
        if name not in names:
            raise EventError(event, field, f"the frame has no value {name!r}")
        return names[name]  # one template alone keeps the value's type

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            raise EventError(event, field, f"the frame has no value {name!r}")
        return str(names[name])

    return _TEMPLATE.sub(one, template)
