"""Fixtures of the MES tests: a real, migrated historian file and a read cursor on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.fixtures.store import migrated_copy
from uns.store.database import Database


@pytest.fixture
def db(tmp_path: Path, migrated_database: Path) -> Iterator[Database]:
    """A migrated historian file in tmp_path (a copy of the session's ``migrated_database``)."""
    with Database(path=migrated_copy(migrated_database, tmp_path / "mes.duckdb")) as database:
        yield database


@pytest.fixture
def cursor(db: Database) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read cursor on it, as the views get one."""
    reader = db.reader()
    yield reader
    reader.close()
