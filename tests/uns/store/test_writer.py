"""The store's one writer: every component's work runs on one thread, in order, and its errors come back."""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path

import pytest

from uns.store.database import Database
from uns.store.writer import Writer


async def test_work_from_several_components_runs_on_one_thread_in_order(tmp_path: Path) -> None:
    writer = Writer(Database(path=tmp_path / "h.duckdb"), name="test-writer")
    await writer.open()
    try:
        threads: set[str] = set()
        done: list[int] = []

        def work(n: int) -> int:
            threads.add(threading.current_thread().name)
            writer.database.connection.execute("INSERT INTO maintenance VALUES (?, now())", [f"task{n}"])
            done.append(n)
            return n

        results = await asyncio.gather(*(writer.submit(functools.partial(work, n)) for n in range(20)))
        assert results == list(range(20))
        assert done == list(range(20))
        assert len(threads) == 1
        assert threads.pop().startswith("test-writer")
        with pytest.raises(ZeroDivisionError):
            await writer.submit(lambda: 1 // 0)
        count = await writer.submit(lambda: writer.database.connection.execute("SELECT count(*) FROM maintenance"))
        assert count.fetchone() == (20,)
    finally:
        await writer.close()
    with pytest.raises(RuntimeError):
        await writer.submit(lambda: 1)  # the thread is gone with the file
