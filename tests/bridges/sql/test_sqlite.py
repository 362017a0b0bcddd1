"""The SQL source against a real SQLite file: restarts, updates, bad rows, an unreachable database."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from tests.bridges.sql.scenario import (
    bad_rows_are_dead_lettered,
    outage_loses_nothing,
    restart_neither_loses_nor_repeats,
)


def _url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'lims.db'}"


async def test_restart_neither_loses_nor_repeats_a_row(tmp_path: Path) -> None:
    await restart_neither_loses_nor_repeats(_url(tmp_path), tmp_path)


async def test_bad_rows_are_dead_lettered_and_their_neighbours_go_through(tmp_path: Path) -> None:
    await bad_rows_are_dead_lettered(_url(tmp_path), tmp_path)


async def test_a_database_gone_is_retried_and_loses_nothing(tmp_path: Path) -> None:
    # a file database cannot be stopped; its table going away fails every query the same way
    def rename(old: str, new: str) -> None:
        with contextlib.closing(sqlite3.connect(tmp_path / "lims.db")) as db:
            db.execute(f'ALTER TABLE "{old}" RENAME TO "{new}"')
            db.commit()

    async def stop() -> None:
        rename("Lab Result", "gone")

    async def start() -> None:
        rename("gone", "Lab Result")

    await outage_loses_nothing(_url(tmp_path), tmp_path, stop=stop, start=start)
