"""Items (JSON objects) to samples and MES events: pure, with the MQTT-JSON bridge's paths and conversions.

An item that does not map raises ``MappingError`` naming the connector, the item's key and the JSON
path, so the caller dead-letters it and carries on with the next item.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import orjson
from pydantic import ValidationError

from bridges.json_paths import MISSING, JsonPath, convert
from bridges.source import Sample, Samples, TagSpec
from model.bridges.http import HttpDevice, HttpEvent, ItemFilter
from model.mes import EVENT_MODELS
from uns.clock import nearest_epoch_ms
from uns.sparkplug import DataType

__all__ = ["MappedEvent", "Mapper", "MappingConfig", "MappingError", "find_items"]

_EQUIPMENT = re.compile(r"[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*")


class MappingError(Exception):
    """An item that does not map: which connector, which item, which JSON path, and why."""

    def __init__(self, connector: str, key: str, path: str, reason: str) -> None:
        self.connector = connector
        self.key = key
        self.path = path
        self.reason = reason
        super().__init__(f"connector {connector}: item {key}: {path}: {reason}")


class MappingConfig(Protocol):
    """What a ``Mapper`` reads: the HTTP connector's config, or another JSON source's (AMQP routes)."""

    @property
    def name(self) -> str:
        """The connector's name: refusals and event ids."""
        ...

    @property
    def key_path(self) -> str | None:
        """The item's key path, named in refusals."""
        ...

    @property
    def devices(self) -> Sequence[HttpDevice]:
        """Items as metrics."""
        ...

    @property
    def events(self) -> Sequence[HttpEvent]:
        """Items as MES events."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class MappedEvent:
    """One MES event ready to publish: its topic and JSON body (with its stable ``event_id``)."""

    topic: str
    body: bytes
    event_id: str


def find_items(connector: str, document: object, items_path: str) -> list[object]:
    """The items of a page or webhook body: a list at ``items_path``, or one object there."""
    found = JsonPath.from_str(items_path).find(document)
    if found is MISSING:
        raise MappingError(connector, "(page)", items_path, "no items there")
    return found if isinstance(found, list) else [found]


def _ms(value: object) -> int:
    """Milliseconds since 1970 from a number or an ISO 8601 string (a naive one is UTC)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.replace("Z", "+00:00") if value.endswith("Z") else value
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return nearest_epoch_ms(parsed)
    raise ValueError(f"{value!r} is not a time")


@dataclasses.dataclass(frozen=True, slots=True)
class _Filter:
    path: JsonPath
    equals: object

    def takes(self, item: object) -> bool:
        return self.path.find(item) == self.equals


def _filter(where: ItemFilter | None) -> _Filter | None:
    return None if where is None else _Filter(JsonPath.from_str(where.path), where.equals)


@dataclasses.dataclass(frozen=True, slots=True)
class _Device:
    config: HttpDevice
    where: _Filter | None
    timestamp: JsonPath | None
    metrics: tuple[tuple[str, JsonPath, DataType, str], ...]


@dataclasses.dataclass(frozen=True, slots=True)
class _Event:
    config: HttpEvent
    where: _Filter | None
    path_from: JsonPath | None
    ids: tuple[tuple[str, JsonPath], ...]
    fields: tuple[tuple[str, str, JsonPath], ...]


class Mapper:
    """Maps items per the connector's ``devices`` and ``events``; parsed once from the config."""

    def __init__(self, config: MappingConfig) -> None:
        self.name = config.name
        self._key = JsonPath.from_str(config.key_path) if config.key_path else None
        self._devices = [
            _Device(
                device,
                _filter(device.where),
                JsonPath.from_str(device.timestamp_path) if device.timestamp_path else None,
                tuple((m.path, JsonPath.from_str(m.path), DataType[m.type], m.name) for m in device.metrics),
            )
            for device in config.devices
        ]
        self._events = [
            _Event(
                event,
                _filter(event.where),
                JsonPath.from_str(event.equipment_path_from) if event.equipment_path_from else None,
                tuple((path, JsonPath.from_str(path)) for path in event.id_paths),
                tuple((field, path, JsonPath.from_str(path)) for field, path in event.fields.items()),
            )
            for event in config.events
        ]

    def tags(self) -> list[TagSpec]:
        """One tag per device metric."""
        return [
            TagSpec(device=d.config.id, name=m.name, datatype=DataType[m.type], unit=m.unit, deadband=m.deadband)
            for d in self._devices
            for m in d.config.metrics
        ]

    def key(self, item: object, index: int) -> str:
        """The item's key for refusals: the value at ``key_path``, else ``#<index>``."""
        if self._key is not None:
            found = self._key.find(item)
            if found is not MISSING and found is not None:
                return str(found)[:128]
        return f"#{index}"

    def samples(self, item: object, key: str, *, now_ms: int) -> list[Samples]:
        """The item's readings, per device that takes it; every metric must be there and fit its type."""
        out: list[Samples] = []
        for device in self._devices:
            if device.where is not None and not device.where.takes(item):
                continue
            timestamp_ms = now_ms
            if device.timestamp is not None:
                timestamp_ms = self._time(item, key, device.config.timestamp_path or "$", device.timestamp)
            readings: list[Sample] = []
            for text, path, datatype, name in device.metrics:
                found = path.find(item)
                if found is MISSING or found is None:
                    raise MappingError(self.name, key, text, "missing")
                try:
                    readings.append(Sample(name, convert(found, datatype), timestamp_ms))
                except ValueError as exc:
                    raise MappingError(self.name, key, text, f"{exc} (metric type {datatype.name})") from None
            out.append(Samples(device.config.id, readings))
        return out

    def events(self, item: object, key: str) -> list[MappedEvent]:
        """The item's MES events, validated against their models so a refusal names the path here."""
        return [
            self._event(event, item, key) for event in self._events if event.where is None or event.where.takes(item)
        ]

    def _event(self, event: _Event, item: object, key: str) -> MappedEvent:
        parts: list[str] = []
        for text, path in event.ids:
            found = path.find(item)
            if found is MISSING or found is None or isinstance(found, dict | list):
                raise MappingError(self.name, key, text, "missing (an event id part)")
            parts.append(str(found))
        event_id = ":".join([self.name, *parts])
        body: dict[str, object] = {**event.config.constants, "event_id": event_id, "source": self.name}
        paths: dict[str, str] = {}
        for field, text, path in event.fields:
            found = path.find(item)
            if found is MISSING:
                continue  # an optional field; a required one is named by the model's check below
            body[field] = _ms_or_none(found, self.name, key, text) if field.endswith("_ms") else found
            paths[field] = text
        model = EVENT_MODELS[event.config.event]
        try:
            model.model_validate(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else "(body)"
            raise MappingError(
                self.name, key, paths.get(field, field), f"{event.config.event}.{field}: {error['msg']}"
            ) from None
        equipment = event.config.equipment_path
        if event.path_from is not None:
            found = event.path_from.find(item)
            if not isinstance(found, str) or not _EQUIPMENT.fullmatch(found.strip("/")):
                reason = f"{found!r} is not an equipment path (slugs a/b/c)" if found is not MISSING else "missing"
                raise MappingError(self.name, key, event.config.equipment_path_from or "$", reason)
            equipment = found.strip("/")
        return MappedEvent(f"{equipment}/mes/{event.config.event}", orjson.dumps(body), event_id)

    def _time(self, item: object, key: str, text: str, path: JsonPath) -> int:
        found = path.find(item)
        if found is MISSING or found is None:
            raise MappingError(self.name, key, text, "missing (the item's time)")
        try:
            return _ms(found)
        except ValueError as exc:
            raise MappingError(self.name, key, text, str(exc)) from None


def _ms_or_none(value: object, name: str, key: str, path: str) -> object:
    if value is None:
        return None
    try:
        return _ms(value)
    except ValueError as exc:
        raise MappingError(name, key, path, str(exc)) from None
