"""The SQL insert sink's writer: one row per message into an ERP's staging tables, one transaction per batch.

SQLAlchemy 2 Core over its async drivers (aiosqlite, psycopg, asyncmy): one abstraction for
SQLite, PostgreSQL and MySQL/MariaDB. The tables exist already (the ERP owns them); at connect the
writer reflects them and checks that every mapped column and the key column are there. Each
message matching a table's filter becomes one row: columns filled from templates
(``uns.sinks.template``), the message's key (the REST sink's: an MES event's hash of topic and
body) in the key column, inserted with ``ON CONFLICT DO NOTHING`` (PostgreSQL, SQLite) or
``INSERT IGNORE`` (MySQL), so a re-delivery is ignored by the database. A batch is one
transaction: committed whole, then acknowledged.

A connection that fails or a database that is locked or shutting down raise ``SinkUnavailable``
(retried with backoff); a row the database refuses (a constraint, a wrong type) raises
``RowsRefused`` (field ``database``), and a placeholder the message cannot fill ``RowsRefused``
(field ``template``): the framework splits the batch down to that row and dead-letters it, in the
local dead-letter file (``uns.sinks.dead_letters``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from model.sinks import SqlInsertSinkConfig, SqlInsertTable
from uns.clock import now_ms
from uns.errors import RowsRefused, SinkUnavailable
from uns.historian.rows import EventRow, Rejected, RowParser, SampleRow
from uns.historian.store import Batch
from uns.mqtt.filters import topic_matches
from uns.sinks.dead_letters import DeadLetters
from uns.sinks.rest import ReplayReport, message_context
from uns.sinks.template import TemplateError, render_value
from uns.sinks.writer import WriteReport

__all__ = ["SqlInsertWriter"]

# errors that say the row is wrong, not the connection
_REFUSALS = (sa.exc.IntegrityError, sa.exc.DataError, sa.exc.ProgrammingError, TypeError, ValueError)


@dataclasses.dataclass(frozen=True, slots=True)
class _Target:
    mapping: SqlInsertTable
    table: sa.Table


def _as_datetime(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


class SqlInsertWriter:
    """Inserts UNS messages into existing tables (see the module docstring).

    Args:
        config: the sink's config (``url``, ``tables``).
    """

    def __init__(self, *, config: SqlInsertSinkConfig) -> None:
        self._config = config
        self._engine: AsyncEngine | None = None
        self._targets: list[_Target] = []
        self.dead_letters = DeadLetters(config.dead_letters_file)
        url = sa.engine.make_url(config.url)
        self._target = url.render_as_string(hide_password=True)
        # SQLAlchemy initialises the dialect on the first connection under a thread lock: a second
        # connect awaiting meanwhile (the framework's connect loop and a first write) would block the loop
        self._connecting = asyncio.Lock()

    @property
    def target(self) -> str:
        """The database URL without its password."""
        return self._target

    def _unavailable(self, reason: str) -> SinkUnavailable:
        return SinkUnavailable(sink=self._config.name, target=self.target, reason=reason)

    async def connect(self) -> None:
        """Open the engine, reflect the tables and check the mapped columns exist."""
        async with self._connecting:
            await self._connect()

    async def _connect(self) -> None:
        if self._engine is None:
            args: dict[str, object] = {}
            if self._config.url.startswith("postgresql"):
                args["connect_timeout"] = max(1, round(self._config.connect_timeout_s))
            elif self._config.url.startswith("sqlite"):
                args["timeout"] = self._config.connect_timeout_s
            self._engine = create_async_engine(self._config.url, connect_args=args, pool_pre_ping=True)
        try:
            async with self._engine.connect() as conn:
                self._targets = await conn.run_sync(self._reflect)
        except sa.exc.NoSuchTableError as exc:
            raise self._unavailable(f"no table {exc} (the sink inserts into existing tables)") from exc
        except (sa.exc.DBAPIError, OSError) as exc:
            raise self._unavailable(f"cannot connect: {str(exc).strip()}") from exc

    def _reflect(self, conn: sa.Connection) -> list[_Target]:
        targets = []
        metadata = sa.MetaData()
        for mapping in self._config.tables:
            table = sa.Table(mapping.table, metadata, schema=mapping.db_schema, autoload_with=conn)
            missing = [c for c in [mapping.key_column, *mapping.columns] if c not in table.c]
            if missing:
                raise sa.exc.NoSuchTableError(f"{mapping.table} with column(s) {', '.join(missing)}")
            targets.append(_Target(mapping, table))
        return targets

    async def aclose(self) -> None:
        """Dispose of the engine."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    def _route(self, topic: str) -> _Target | None:
        for target in self._targets:
            if topic_matches(topic, target.mapping.match):
                return target
        return None

    def _statement(self, target: _Target) -> sa.Executable:
        dialect = self._engine.dialect.name if self._engine is not None else ""
        key = target.table.c[target.mapping.key_column]
        # RETURNING tells an inserted row from an ignored one (psycopg's rowcount does not, here)
        if dialect == "postgresql":
            return postgresql.insert(target.table).on_conflict_do_nothing().returning(key)
        if dialect == "sqlite":
            return sqlite.insert(target.table).on_conflict_do_nothing().returning(key)
        if dialect == "mysql":
            return mysql.insert(target.table).prefix_with("IGNORE")
        return sa.insert(target.table)

    def _values(self, target: _Target, row: EventRow | SampleRow, sink: str) -> dict[str, object]:
        context = message_context(row, sink)
        values: dict[str, object] = {target.mapping.key_column: context["key"]}
        for column, template in target.mapping.columns.items():
            value = render_value(template, context)
            if isinstance(target.table.c[column].type, sa.DateTime):
                value = _as_datetime(value)
            values[column] = value
        return values

    async def write(self, batch: Batch, *, sink: str) -> WriteReport:
        """Insert the batch's rows in one transaction, then store its dead letters (``SinkWriter.write``)."""
        started = time.perf_counter()
        if self._engine is None or not self._targets:
            await self.connect()
        async with self._connecting:
            return await self._write(batch, sink, started)

    async def _write(self, batch: Batch, sink: str, started: float) -> WriteReport:
        engine = self._engine
        assert engine is not None  # noqa: S101  (connect sets it)
        try:
            async with engine.begin() as conn:
                inserted, duplicates = await self._insert(conn, batch, sink)
        except RowsRefused:
            raise
        except _REFUSALS as exc:
            if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
                raise self._unavailable(str(exc.orig).strip()) from exc
            reason = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc).strip()
            raise RowsRefused(sink=sink, target=self.target, reason=reason) from exc
        except (sa.exc.DBAPIError, OSError) as exc:  # connection lost, database locked or shutting down
            raise self._unavailable(str(getattr(exc, "orig", exc)).strip() or type(exc).__name__) from exc
        if batch.rejected:
            await asyncio.to_thread(self.dead_letters.add, sink, batch.rejected)
        return WriteReport(
            inserted=inserted[False],
            duplicates=duplicates[False],
            events=inserted[True],
            duplicate_events=duplicates[True],
            dead_letters=len(batch.rejected),
            seconds=time.perf_counter() - started,
        )

    async def _insert(self, conn: AsyncConnection, batch: Batch, sink: str) -> tuple[dict[bool, int], dict[bool, int]]:
        """One multi-row INSERT per table; RETURNING names the inserted keys (the others were there already)."""
        grouped: dict[int, tuple[_Target, list[dict[str, object]], list[tuple[str, bool]]]] = {}
        ordered: list[tuple[int, EventRow | SampleRow]] = [
            *((len(batch.samples) + i, row) for i, row in enumerate(batch.events)),
            *enumerate(batch.samples),
        ]
        for index, row in ordered:
            target = self._route(row.topic)
            if target is None:
                continue  # no table wants it: acknowledged with the batch
            try:
                values = self._values(target, row, sink)
            except TemplateError as problem:  # that row alone is dead-lettered, the rest written again
                raise RowsRefused(
                    sink=sink, target=self.target, reason=str(problem), field="template", rows=(index,)
                ) from None
            _, rows, keys = grouped.setdefault(id(target), (target, [], []))
            rows.append(values)
            keys.append((str(values[target.mapping.key_column]), isinstance(row, EventRow)))
        inserted = {True: 0, False: 0}
        duplicates = {True: 0, False: 0}
        for target, rows, keys in grouped.values():
            result = await conn.execute(self._statement(target), rows)
            if result.returns_rows:
                new = {str(key) for (key,) in result.fetchall()}
            else:  # MySQL: no RETURNING; INSERT IGNORE's row count says how many were new
                new = {key for key, _ in keys[: result.rowcount]}
            for key, is_event in keys:
                if key in new:
                    new.discard(key)  # the same message twice in one batch: the second is a duplicate
                    inserted[is_event] += 1
                else:
                    duplicates[is_event] += 1
        return inserted, duplicates

    async def replay(self, *, since_ms: int = 0, ids: list[int] | None = None) -> ReplayReport:
        """Insert the stored dead letters again with the current mapping; delete each one the database takes."""
        report = ReplayReport()
        parser = RowParser(max_future_ms=int(self._config.max_future_s * 1000))
        letters = await asyncio.to_thread(self.dead_letters.list, since_ms=since_ms, ids=ids or ())
        for letter in letters:
            row = parser.parse(letter.topic, letter.payload, now_ms=now_ms())
            if row is None or isinstance(row, Rejected):
                report.not_replayable += 1
                continue
            batch = Batch(events=[row]) if isinstance(row, EventRow) else Batch(samples=[row], received_ms=[0])
            try:
                await self.write(batch, sink=self._config.name)
            except RowsRefused as refused:
                report.refused += 1
                await asyncio.to_thread(self.dead_letters.refused_again, letter.id, refused.field, refused.reason)
                continue
            except SinkUnavailable as problem:
                report.unavailable = problem.reason
                return report
            report.delivered += 1
            await asyncio.to_thread(self.dead_letters.delivered, letter.id)
        return report
