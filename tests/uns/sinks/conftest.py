"""Sink test fixtures: one throwaway PostgreSQL cluster per session, a fresh database per test."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest

from tests.fixtures.postgres import PgCluster, run_postgres
from tests.fixtures.requires import require


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgCluster]:
    """A PostgreSQL cluster for the whole session (initdb + pg_ctl, about 1 s)."""
    with run_postgres(require("postgres")) as cluster:
        yield cluster


@pytest.fixture
def pg_dsn(postgres: PgCluster, request: pytest.FixtureRequest) -> str:
    """A fresh database named after the test; its dsn."""
    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())
    digest = hashlib.blake2b(request.node.nodeid.encode(), digest_size=4).hexdigest()
    return postgres.create_database(f"{name[:50]}_{digest}")
