"""Fixtures of the history query tests: a migrated historian file and a Filler on it (files may override ``db``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.uns.historian.history_data import Filler, open_database
from uns.historian.database import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """An open, migrated historian file in tmp_path."""
    database = open_database(tmp_path / "historian.duckdb")
    yield database
    database.close()


@pytest.fixture
def fill(db: Database) -> Filler:
    """Plain-SQL rows into ``db``."""
    return Filler(db.connection)
