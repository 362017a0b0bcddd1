"""Open the hub's DuckDB file: migrate each component's tables safely, hand out one writer and any readers."""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import duckdb
import pyarrow as pa

from model.config import HistorianSection
from uns.errors import SchemaTooNew, StoreError
from uns.store.migrations import (
    LAYOUT_VERSION,
    Component,
    Migration,
    create_layout,
    installed,
    record,
    schema_version,
    version_of,
)

__all__ = [
    "ALLOCATOR_FLUSH_MB",
    "ARROW_ROWS",
    "DEFAULT_MEMORY_LIMIT_MB",
    "Database",
    "database_path",
    "eviction_queue_nodes",
    "insert_arrow",
    "register_arrow",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

DEFAULT_MEMORY_LIMIT_MB = 512
"""DuckDB's buffer manager cap. Its own default is 80 % of RAM: blocks read by queries stay cached
up to that, so a long-running hub's memory would follow its history's size. Past the cap DuckDB
evicts cached blocks and spills large query state to ``<file>.tmp``."""
ALLOCATOR_FLUSH_MB = 32
"""A task that peaked above this hands DuckDB's freed pages back at its end (DuckDB's default: 128)."""
READERS_WAIT_S = 10.0
"""How long ``Database.close`` waits for reads in progress (a view, a history query) before interrupting them."""
_INTERRUPTED_WAIT_S = 2.0
"""How long ``Database.close`` then interrupts the reads left (each query they start) until they end."""


def eviction_queue_nodes(connection: duckdb.DuckDBPyConnection) -> int:
    """Nodes in DuckDB's buffer eviction queues (``duckdb_eviction_queues()``), dead ones included."""
    row = connection.execute("SELECT coalesce(sum(approximate_size), 0) FROM duckdb_eviction_queues()").fetchone()
    return int(row[0]) if row else 0


def database_path(section: HistorianSection, data_dir: Path) -> Path:
    """Where the store's DuckDB file lives: ``historian.path`` or ``<data_dir>/historian.duckdb``."""
    return section.path or data_dir / "historian.duckdb"


def _lock_help(path: Path) -> str:
    return (
        f"another process holds {path} (DuckDB allows one writer): stop it, or query the running hub over HTTP"
        " with `uns query --api http://host:port`"
    )


def register_arrow(connection: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Make ``table`` queryable as ``name`` on ``connection``, whatever ran on it before.

    DuckDB 2 refuses ``register`` while an earlier ``execute`` has a result not fetched to its end, and a
    ``fetchone()`` leaves one so (it does not look for a second row): a component reading one row on the
    shared writer would make the next insert of another fail and stop the hub. A finished query settles it.
    """
    connection.execute("SELECT 1").fetchall()
    connection.register(name, table)


ARROW_ROWS = "_arrow_rows"
"""The name ``insert_arrow``'s statements read its Arrow table by."""


def insert_arrow(connection: duckdb.DuckDBPyConnection, rows: pa.Table, *statements: str) -> None:
    """Run each statement (``INSERT ... SELECT ... FROM _arrow_rows``, or an ``UPDATE`` from it) on ``rows``.

    DuckDB reads an Arrow table a Python variable holds by the variable's name (a replacement scan),
    with no registration: ~0.6 ms against ~1.3 ms for ``register_arrow``, query and unregister, and no
    earlier unfetched result to settle. A writer that commits a few rows a second (an idle plant) spends
    most of its time on such fixed costs; the rows are scanned without a copy either way.
    """
    _arrow_rows = rows  # read by DuckDB by its name, ARROW_ROWS
    for statement in statements:
        connection.execute(statement)


class Database:
    """The hub's database file, each component's tables migrated to their latest version on open.

    ``connection`` is the one read-write connection: use it from one thread at a time (the store's
    writer thread, ``uns.store.writer.Writer``). ``reader()`` gives a cursor for another thread; DuckDB
    serves each a consistent snapshot while the writer commits.

    Args:
        path: the DuckDB file, created with its folder when missing; ``:memory:`` for a throwaway.
        read_only: open without writing (no migration); for ``uns query`` against a stopped hub.
        components: whose tables to migrate (read-only: to check); default every installed one
            (``uns.store.migrations.INSTALLED``: historian, MES, alarm history).
        memory_limit_mb: DuckDB's ``memory_limit`` for this file (``DEFAULT_MEMORY_LIMIT_MB``).
    """

    def __init__(
        self,
        *,
        path: Path | str,
        read_only: bool = False,
        components: Sequence[Component] | None = None,
        memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB,
    ) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        self._memory_limit_mb = memory_limit_mb
        self._name = str(path)
        self._read_only = read_only
        self._components = tuple(components) if components is not None else None
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._readers: set[duckdb.DuckDBPyConnection] = set()
        """The cursors of the ``reading`` blocks in progress: ``close`` waits for them, then interrupts them."""
        self._no_readers = threading.Condition(self._lock)

    @property
    def name(self) -> str:
        """The file as given (``:memory:`` for a throwaway): how errors about it name it."""
        return self._name

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The read-write connection (read-only when opened so)."""
        if self._connection is None:
            raise StoreError(self._name, "not open: use `with Database(...)` first")
        return self._connection

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A bare cursor for a test or a tool: close it when done.

        ``close`` neither waits for nor interrupts it: components read through ``reading``, which does.
        """
        with self._lock:
            return self.connection.cursor()

    @contextlib.contextmanager
    def reading(
        self, what: str, *, error: Callable[[str, str], StoreError] = StoreError
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A reader cursor for the block, closed after it; a DuckDB error in it raises ``error``.

        The one way a component reads the file, so a failing file answers the same everywhere (the web: 503)
        and never as a raw ``duckdb.Error``. The message is ``<what> failed: <DuckDB's reason>``.

        Raises:
            StoreError: the file is not open, or a read in the block failed (then ``error``'s, a branch of it).
        """
        with self._lock:
            cursor = self.connection.cursor()
            self._readers.add(cursor)
        try:
            yield cursor
        except duckdb.Error as exc:
            raise error(self._name, f"{what} failed: {exc}") from exc
        finally:
            with self._lock:  # closed under the lock: close never interrupts a cursor being closed
                cursor.close()
                self._readers.discard(cursor)
                if not self._readers:
                    self._no_readers.notify_all()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Open (creating and migrating when writable); raises ``StoreError`` saying what to do."""
        if self.path is not None and not self._read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path is not None and self._read_only and not self.path.exists():
            raise StoreError(self._name, "no such file: start the historian (`uns up` or `uns historian`) first")
        try:
            connection = duckdb.connect(self._name, read_only=self._read_only)
        except duckdb.IOException as exc:
            reason = _lock_help(self.path or Path(self._name)) if "lock" in str(exc).lower() else str(exc)
            raise StoreError(self._name, reason) from exc
        except duckdb.Error as exc:
            raise StoreError(self._name, f"cannot open: {exc}") from exc
        try:
            # every TIMESTAMPTZ comes back in UTC; callers convert to the zone a user asked for
            connection.execute("SET GLOBAL TimeZone = 'UTC'")
            connection.execute(f"SET GLOBAL memory_limit = '{int(self._memory_limit_mb)}MiB'")
            # DuckDB's bundled jemalloc keeps freed pages until a task peaks above 128 MiB: under a steady
            # ingest they piled up outside memory_limit (+60 MiB an hour in bench/soak.py); purge them
            connection.execute("SET GLOBAL allocator_background_threads = true")
            connection.execute(f"SET GLOBAL allocator_flush_threshold = '{ALLOCATOR_FLUSH_MB}MiB'")
            self._check_and_migrate(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def release_memory(self) -> int:
        """Drop the dead nodes of DuckDB's buffer eviction queues; on the writer thread. Returns the nodes dropped.

        Each buffer a query frees leaves a node in a queue, and a node whose buffer is gone keeps ~150 bytes of
        glibc heap until DuckDB purges it, which it does only past ~32k nodes per queue (there are seven): under
        the hub's steady queries that grew the heap ~1.3 MiB a minute for over an hour (docs/benchmarks.md, soak).
        A cap no memory can meet makes DuckDB walk every queue (dropping dead nodes, unloading cached blocks it
        can reload) and refuse; the cap itself is restored whatever happened.
        """
        connection = self.connection
        before = eviction_queue_nodes(connection)
        try:
            connection.execute("SET GLOBAL memory_limit = '1KB'")
        except duckdb.OutOfMemoryException:
            pass  # the expected refusal: the cap was never changed
        finally:
            connection.execute(f"SET GLOBAL memory_limit = '{int(self._memory_limit_mb)}MiB'")
        return max(0, before - eviction_queue_nodes(connection))

    def close(self, *, readers_wait_s: float = READERS_WAIT_S) -> None:
        """Checkpoint and close; idempotent. Refuses new readers at once and waits for the ones reading.

        A read runs in a thread (``asyncio.to_thread``) that cancelling its task does not stop: closing under
        it made the read fail with DuckDB's "connection closed" and the close itself fail on a cursor still in
        use. Readers get ``readers_wait_s`` to finish; the queries of one still reading after that are
        interrupted (they fail), with a warning: DuckDB refuses to close a connection whose cursor is running
        a query (``ResourceInUseException``), which would leave the file open and unchecked-pointed.
        """
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is None:
                return
            if not self._no_readers.wait_for(lambda: not self._readers, timeout=readers_wait_s):
                log.warning(
                    "%s: %d reads still running after %.1f s: interrupting them",
                    self._name,
                    len(self._readers),
                    readers_wait_s,
                )
                self._interrupt_readers()
        try:
            if not self._read_only:
                connection.execute("CHECKPOINT")
        finally:
            connection.close()

    def _interrupt_readers(self) -> None:
        """Interrupt the readers' queries (and the next ones they start) until they end, for a while; lock held."""
        deadline = time.monotonic() + _INTERRUPTED_WAIT_S
        while self._readers and time.monotonic() < deadline:
            for cursor in self._readers:
                cursor.interrupt()
            self._no_readers.wait(0.05)

    def _check_and_migrate(self, connection: duckdb.DuckDBPyConnection) -> None:
        components = self._components if self._components is not None else installed()
        found = schema_version(connection)
        if found > LAYOUT_VERSION:
            raise SchemaTooNew(self._name, found, LAYOUT_VERSION)
        if self._read_only:
            self._check_read_only(connection, found, components)
            return
        backed_up = False
        if found < LAYOUT_VERSION:
            if found > 0:  # a file of the one legacy sequence: its components' versions are read from it
                backed_up = self._backup(connection, f"v{found}")
            self._in_transaction(connection, "the per-component layout", lambda: create_layout(connection))
        for component in components:
            current = self._in_transaction(connection, component.name, partial(version_of, connection, component))
            if current > component.latest:
                raise SchemaTooNew(f"{self._name} ({component.name})", current, component.latest)
            pending = [m for m in component.migrations if m.version > current]
            if pending and current > 0 and not backed_up:
                backed_up = self._backup(connection, f"{component.name}-v{current}")
            for migration in pending:
                self._apply(connection, component, migration)

    def _check_read_only(
        self, connection: duckdb.DuckDBPyConnection, found: int, components: Sequence[Component]
    ) -> None:
        """Read-only: every component must be at the version this uns-hub writes."""
        if found < LAYOUT_VERSION:
            raise StoreError(
                self._name, f"schema version {found} needs migrating to {LAYOUT_VERSION}: open it writable once"
            )
        for component in components:
            current = version_of(connection, component, carry=False)
            if current > component.latest:
                raise SchemaTooNew(f"{self._name} ({component.name})", current, component.latest)
            if current < component.latest:
                raise StoreError(
                    self._name,
                    f"{component.name} tables at version {current} need migrating to {component.latest}:"
                    " open it writable once",
                )

    def _apply(self, connection: duckdb.DuckDBPyConnection, component: Component, migration: Migration) -> None:
        def run() -> None:
            for statement in migration.statements:
                connection.execute(statement)
            record(connection, component, migration)

        self._in_transaction(
            connection, f"{component.name} migration {migration.version} ({migration.description})", run
        )
        log.info(
            "store %s: %s migrated to version %d: %s",
            self._name,
            component.name,
            migration.version,
            migration.description,
        )

    def _in_transaction(self, connection: duckdb.DuckDBPyConnection, what: str, work: Callable[[], _T]) -> _T:
        connection.execute("BEGIN TRANSACTION")
        try:
            result = work()
            connection.execute("COMMIT")
        except duckdb.Error as exc:
            connection.execute("ROLLBACK")
            raise StoreError(self._name, f"{what} failed: {exc}") from exc
        return result

    def _backup(self, connection: duckdb.DuckDBPyConnection, label: str) -> bool:
        """Copy the file aside as ``<file>.<label>.bak`` before touching an existing schema; True once done.

        So an upgrade can always be undone (a ``:memory:`` file has nothing to keep).
        """
        if self.path is None:
            return True
        connection.execute("CHECKPOINT")
        backup = self.path.with_name(f"{self.path.name}.{label}.bak")
        shutil.copy2(self.path, backup)
        log.info("store %s: copied to %s before migrating from %s", self._name, backup, label)
        return True
