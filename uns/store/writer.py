"""The store's one writer thread: every component that writes the DuckDB file submits its work here.

DuckDB allows one writer per file, and its read-write connection is used from one thread at a time, so
the historian, the MES adapter and the rules' alarm history share this thread instead of each owning one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

from uns.store.database import Database

__all__ = ["Writer"]

_T = TypeVar("_T")


class Writer:
    """Runs work on the single thread that owns ``database``'s read-write connection.

    Args:
        database: the store's file (opened and closed here: ``open()``, ``close()``).
        name: the thread's name prefix, as profiles and ``py-spy`` show it.
    """

    def __init__(self, database: Database, *, name: str = "store-writer") -> None:
        self.database = database
        """The file whose read-write connection only work submitted here may use."""
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def submit(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` on the writer thread and return its result (its exception is raised here)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    async def open(self) -> None:
        """Open (and migrate) the database on the writer thread."""
        await self.submit(self.database.open)

    async def close(self) -> None:
        """Checkpoint and close the database on the writer thread, then let the thread go."""
        try:
            await self.submit(self.database.close)
        finally:
            self._thread.shutdown(wait=False)
