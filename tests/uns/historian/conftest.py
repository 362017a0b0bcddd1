"""Fixtures of the historian tests: a migrated historian file and a Filler on it (files may override ``db``), and
either broker's URL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fixtures.broker import start_broker
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.store import migrated_copy
from tests.uns.historian.history_data import Filler, open_database
from uns.store.database import Database


@pytest.fixture
def db(tmp_path: Path, migrated_database: Path) -> Iterator[Database]:
    """An open, migrated historian file in tmp_path (a copy of the session's ``migrated_database``)."""
    database = open_database(migrated_copy(migrated_database, tmp_path / "historian.duckdb"))
    yield database
    database.close()


@pytest.fixture
def fill(db: Database) -> Filler:
    """Plain-SQL rows into ``db``."""
    return Filler(db.connection)


@pytest.fixture(params=["embedded", "mosquitto"])
async def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The embedded broker on a free port, or the session's Mosquitto."""
    if request.param == "mosquitto":
        mosquitto: Mosquitto = request.getfixturevalue("mosquitto")
        yield mosquitto.url
    else:
        async with start_broker(tmp_path) as broker:
            yield str(broker.url)
