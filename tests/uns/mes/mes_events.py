"""Feed MES events through the real MesStore into a real DuckDB file, for the store and view tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson

from model.config import MesSection
from model.mes import EVENT_MODELS
from uns.mes.store import Incoming, MesStore, Outcome
from uns.store.database import Database

__all__ = ["Feeder", "at", "ms", "open_db"]


def ms(when: datetime) -> int:
    """Milliseconds since 1970 of an aware datetime."""
    return int(when.timestamp() * 1000)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A UTC instant in November 2026."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def open_db(path: Path) -> Database:
    """A migrated, open historian database; close it when done."""
    database = Database(path=path)
    database.open()
    return database


class Feeder:
    """Builds ``Incoming`` events from plain dicts and applies them through one ``MesStore``."""

    def __init__(self, database: Database, section: MesSection | None = None) -> None:
        self.section = section or MesSection()
        self.database = database
        self.store = MesStore(database.connection, self.section)
        self._ids = itertools.count(1)

    def incoming(self, path: str, event: str, body: dict[str, object], *, received: datetime | None = None) -> Incoming:
        """A validated event on ``<path>/mes/<event>`` (raises pydantic's error for a bad body)."""
        raw = orjson.dumps(body)
        model = EVENT_MODELS[event].model_validate_json(raw)
        when = received or datetime.fromtimestamp(model.timestamp_ms / 1000, UTC)
        return Incoming(topic=f"{path}/mes/{event}", path=path, event=event, body=model, received_ms=ms(when), raw=raw)

    def send(self, path: str, event: str, when: datetime, **body: object) -> Outcome:
        """Apply one event at ``when`` (received then too); returns its outcome."""
        item = self.incoming(path, event, {"timestamp_ms": ms(when), **body})
        return self.store.apply([item])[0]

    def states(self, path: str, changes: list[tuple[datetime, int]]) -> None:
        """Machine states of ``path`` as (since, code) pairs, in one batch."""
        items = [self.incoming(path, "machine_state", {"timestamp_ms": ms(t), "state": code}) for t, code in changes]
        outcomes = self.store.apply(items)
        assert all(o.status == "stored" for o in outcomes), outcomes

    def rows(self, sql: str, *params: object) -> Iterator[tuple[object, ...]]:
        """Rows of a query on the read-write connection."""
        yield from self.database.connection.execute(sql, list(params)).fetchall()
