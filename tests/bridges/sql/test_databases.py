"""The SQL source scenario on real PostgreSQL and MariaDB servers (throwaway, on free loopback ports).

Each database gets its own server for the module, since the outage test stops and restarts it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.bridges.sql.mariadb import MariaDb, run_mariadb
from tests.bridges.sql.scenario import (
    bad_rows_are_dead_lettered,
    outage_loses_nothing,
    restart_neither_loses_nor_repeats,
)
from tests.fixtures.postgres import PgCluster, run_postgres
from tests.fixtures.requires import require


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgCluster]:
    """A PostgreSQL cluster of this module's own."""
    with run_postgres(require("postgres")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDb]:
    """A MariaDB server of this module's own."""
    with run_mariadb(require("mariadb")) as server:
        yield server


def _name(request: pytest.FixtureRequest) -> str:
    return "t_" + hashlib.blake2b(request.node.nodeid.encode(), digest_size=6).hexdigest()


@pytest.fixture
def pg_url(postgres: PgCluster, request: pytest.FixtureRequest) -> str:
    """A fresh database; its SQLAlchemy URL (psycopg 3, async)."""
    dsn = postgres.create_database(_name(request))
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
async def maria_url(mariadb: MariaDb, request: pytest.FixtureRequest) -> str:
    """A fresh database; its SQLAlchemy URL (asyncmy)."""
    name = _name(request)
    engine = create_async_engine(mariadb.url())
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            await conn.execute(sa.text(f"CREATE DATABASE {name}"))
    finally:
        await engine.dispose()
    return mariadb.url(name)


async def test_postgres_restart_neither_loses_nor_repeats_a_row(pg_url: str, tmp_path: Path) -> None:
    await restart_neither_loses_nor_repeats(pg_url, tmp_path)


async def test_postgres_bad_rows_are_dead_lettered(pg_url: str, tmp_path: Path) -> None:
    await bad_rows_are_dead_lettered(pg_url, tmp_path)


async def test_postgres_stopped_is_retried_and_loses_nothing(postgres: PgCluster, pg_url: str, tmp_path: Path) -> None:
    async def stop() -> None:
        postgres.stop()

    async def start() -> None:
        postgres.start()

    await outage_loses_nothing(pg_url, tmp_path, stop=stop, start=start)


async def test_mariadb_restart_neither_loses_nor_repeats_a_row(maria_url: str, tmp_path: Path) -> None:
    await restart_neither_loses_nor_repeats(maria_url, tmp_path)


async def test_mariadb_bad_rows_are_dead_lettered(maria_url: str, tmp_path: Path) -> None:
    await bad_rows_are_dead_lettered(maria_url, tmp_path)


async def test_mariadb_stopped_is_retried_and_loses_nothing(mariadb: MariaDb, maria_url: str, tmp_path: Path) -> None:
    async def stop() -> None:
        mariadb.stop()

    async def start() -> None:
        mariadb.start()

    await outage_loses_nothing(maria_url, tmp_path, stop=stop, start=start)
