"""The PostgreSQL sink's writer: COPY a batch into a staging table, then INSERT ... ON CONFLICT DO NOTHING.

One psycopg connection, used only from one writer thread (as the historian's DuckDB connection is),
so the event loop keeps reading while a batch is written. At connect the writer creates what is
missing under an advisory lock (several sink processes may start at once): the schema, the tables,
and either TimescaleDB's hypertable with compression (when the extension is available and
``timescaledb`` is not ``off``) or native range partitions of ``samples``, created ahead of time
and on demand for any period a batch reaches (store-and-forward backfill included).

A batch of at least ``SPLIT_ROWS`` samples is written on two connections at once ("lanes"), each
in its own transaction, split by series (``series_id`` parity) so the two never touch the same key
of ``samples`` or row of ``latest``: the server's INSERT work, the bulk of a batch's time, runs in
two backends. ``write`` returns only when both committed; if either fails it raises, the framework
retries the whole batch, and the half already committed comes back as re-deliveries, ignored by
the sample identity (exactly-once holds; only the inserted/duplicate split of that retry moves).

A lost connection, a refused login or a database shutting down raise ``SinkUnavailable`` (the
framework retries the same batch with backoff; the next write reconnects); a row the database
refuses (a NUL in a string, a value out of range) raises ``RowsRefused``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

import psycopg

from model.sinks import PostgresSinkConfig, redact_dsn
from uns.clock import now_ms
from uns.errors import RowsRefused, SinkUnavailable
from uns.historian.rows import EventRow, Rejected, SampleRow
from uns.historian.store import Batch
from uns.sinks.postgres_sql import (
    LOCK_KEY,
    STAGING_COLUMNS,
    Partition,
    hypertable_statements,
    partition_statement,
    partitions_for,
    schema_statements,
    staging_statement,
    upsert_statements,
)
from uns.sinks.writer import WriteReport

__all__ = ["LANES", "SPLIT_ROWS", "PostgresWriter"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_U64 = 2**64
_I64_MAX = 2**63 - 1
_DEADLOCK_RETRIES = 3
LANES = 2
"""Connections a batch is written on at once (lane 0 also registers series, partitions, events)."""
SPLIT_ROWS = 2_000
"""Smaller batches go on lane 0 alone: splitting them costs a second round trip for little."""
_Conn = psycopg.Connection[tuple[object, ...]]
_STAGING_TYPES = [kind for _, kind in STAGING_COLUMNS]
_STAGING_NAMES = ", ".join(name for name, _ in STAGING_COLUMNS)
_Series = tuple[int, str | None, str | None, bool]
"""What the writer remembers of a series: (series_id, datatype, unit, unbound)."""
_SeriesRows = list[tuple[str, int, str | None, str | None, bool]]


def _signed(key: int) -> int:
    """An unsigned 64-bit event key as PostgreSQL's signed bigint (same bits)."""
    return key - _U64 if key > _I64_MAX else key


class PostgresWriter:
    """Writes batches of UNS rows into PostgreSQL (or TimescaleDB).

    Args:
        config: the sink's config (``dsn``, ``db_schema``, partitioning, TimescaleDB).
    """

    def __init__(self, *, config: PostgresSinkConfig) -> None:
        self._config = config
        self._schema = config.db_schema
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=LANES, thread_name_prefix="pg-sink-writer")
        self._conns: list[_Conn | None] = [None] * LANES
        self._locks = [threading.Lock() for _ in range(LANES)]
        """One per lane: a connect and a write may reach ``_connection`` on two writer threads at once."""
        self._series: dict[str, _Series] = {}
        self._partitions: set[Partition] = set()
        self.hypertable = False
        """Whether ``samples`` is a TimescaleDB hypertable (found at connect)."""
        self._samples_sql, self._latest_sql = upsert_statements(self._schema)

    @property
    def target(self) -> str:
        """The database URL without its password, and the schema."""
        return f"{redact_dsn(self._config.dsn)} schema {self._schema}"

    async def _on_thread(self, work: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    async def connect(self) -> None:
        """Connect and create the schema, tables and partitions that are missing."""
        await self._on_thread(lambda: self._connection(0))

    async def write(self, batch: Batch, *, sink: str) -> WriteReport:
        """Commit one batch (see ``SinkWriter.write``): on two lanes at once when it is large."""
        started = time.perf_counter()
        parts = await self._on_thread(lambda: self._guarded(0, sink, lambda conn: self._split(conn, batch)))
        done = await asyncio.gather(
            *(self._on_thread(functools.partial(self._write, lane, part, sink)) for lane, part in enumerate(parts)),
            return_exceptions=True,
        )  # both lanes finish (commit or roll back) before a failure goes up and the batch is retried
        report = WriteReport(inserted=0, duplicates=0)
        for result in done:
            if isinstance(result, BaseException):
                raise result
            report += result
        return dataclasses.replace(report, seconds=time.perf_counter() - started)

    async def aclose(self) -> None:
        """Close the connections and the writer threads, after the work already handed to them."""
        # On its own thread, so a cancelled aclose (the sink stopping) still closes only after a
        # cancelled write's lanes are done: closing under them would leave a lane's reconnect open.
        closer = threading.Thread(target=self._close, name="pg-sink-close")
        closer.start()
        await asyncio.to_thread(closer.join)

    def _close(self) -> None:
        self._thread.shutdown(wait=True)
        self._drop()

    # -- on the writer thread -------------------------------------------------------------------

    def _unavailable(self, reason: str) -> SinkUnavailable:
        return SinkUnavailable(sink=self._config.name, target=self.target, reason=reason)

    def _drop(self, lane: int | None = None) -> None:
        for n in range(LANES) if lane is None else (lane,):
            conn, self._conns[n] = self._conns[n], None
            if conn is not None:
                conn.close()

    def _connection(self, lane: int) -> _Conn:
        with self._locks[lane]:
            return self._connect(lane)

    def _connect(self, lane: int) -> _Conn:
        conn = self._conns[lane]
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        self._drop(lane)
        try:
            conn = psycopg.connect(
                self._config.dsn,
                autocommit=True,
                connect_timeout=max(1, round(self._config.connect_timeout_s)),
                application_name=f"uns-sink-{self._config.name}",
            )
        except psycopg.Error as exc:
            raise self._unavailable(f"cannot connect: {str(exc).strip()}") from exc
        try:
            conn.execute("SET extra_float_digits = 1")  # vkey hashes value::text: the exact shortest form, always
            if lane == 0:
                self._prepare(conn)
            conn.execute(staging_statement())
        except psycopg.Error as exc:
            conn.close()
            raise self._unavailable(f"cannot prepare the tables: {str(exc).strip()}") from exc
        self._conns[lane] = conn
        return conn

    def _prepare(self, conn: _Conn) -> None:
        config = self._config
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
            self.hypertable = self._use_timescaledb(conn)
            for statement in schema_statements(self._schema, hypertable=self.hypertable):
                conn.execute(statement)  # built from validated identifiers
            if self.hypertable:
                steps = hypertable_statements(
                    self._schema, partition=config.partition, compress_after_days=config.compress_after_days
                )
                for statement in steps:
                    conn.execute(statement)
        self._partitions = set()
        self._ensure_partitions(conn, ())
        query = f"SELECT topic, series_id, datatype, unit, unbound FROM {self._schema}.series"  # noqa: S608
        rows = cast(_SeriesRows, conn.execute(query).fetchall())
        self._series = {
            topic: (series_id, datatype, unit, unbound) for topic, series_id, datatype, unit, unbound in rows
        }
        log.info(
            "postgres sink %s: %s ready (%s, %d series)",
            config.name,
            self.target,
            "TimescaleDB hypertable" if self.hypertable else f"partitioned by {config.partition}",
            len(self._series),
        )

    def _use_timescaledb(self, conn: _Conn) -> bool:
        mode = self._config.timescaledb
        if mode == "off":
            return False
        found = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        if found is None and mode == "on":
            raise psycopg.errors.FeatureNotSupported(
                "timescaledb: on, but the extension is not available on this server (install it, or set auto)"
            )
        return found is not None

    def _ensure_partitions(self, conn: _Conn, ts_ms: Sequence[int]) -> None:
        """Create the partitions these timestamps need and those ``partitions_ahead`` of now, if missing."""
        if self.hypertable:
            return  # TimescaleDB makes its chunks
        wanted = partitions_for(ts_ms, self._config.partition, now_ms=now_ms(), ahead=self._config.partitions_ahead)
        missing = sorted(wanted - self._partitions)
        if not missing:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
            for part in missing:
                conn.execute(partition_statement(self._schema, part))
        self._partitions |= set(missing)

    def _series_ids(self, conn: _Conn, samples: Sequence[SampleRow]) -> None:
        """Register new series (committed on their own: another process may be adding them too)."""
        known = self._series
        new: dict[str, SampleRow] = {}
        changed: list[tuple[str | None, str | None, bool, int]] = []
        for row in samples:
            series = known.get(row.topic)
            if series is None:
                new.setdefault(row.topic, row)
                continue
            datatype, unit = row.datatype or series[1], row.unit or series[2]
            if (series[1], series[2], series[3]) != (datatype, unit, row.unbound):
                known[row.topic] = (series[0], datatype, unit, row.unbound)
                changed.append((datatype, unit, row.unbound, series[0]))
        schema = self._schema
        if new:
            rows = list(new.values())
            conn.execute(
                f"INSERT INTO {schema}.series (topic, path, class, metric, datatype, unit, unbound)"  # noqa: S608
                " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
                " %s::bool[]) ON CONFLICT (topic) DO NOTHING",
                [
                    [r.topic for r in rows],
                    [r.path for r in rows],
                    [r.class_word for r in rows],
                    [r.metric for r in rows],
                    [r.datatype for r in rows],
                    [r.unit for r in rows],
                    [r.unbound for r in rows],
                ],
            )
            found = cast(
                _SeriesRows,
                conn.execute(
                    f"SELECT topic, series_id, datatype, unit, unbound FROM {schema}.series WHERE topic = ANY(%s)",  # noqa: S608
                    [list(new)],
                ).fetchall(),
            )
            for topic, series_id, datatype, unit, unbound in found:
                known[topic] = (series_id, datatype, unit, unbound)
        if changed:
            with conn.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {schema}.series SET datatype = %s, unit = %s, unbound = %s WHERE series_id = %s",  # noqa: S608
                    changed,
                )

    def _split(self, conn: _Conn, batch: Batch) -> list[Batch]:
        """Register the batch's series and partitions, then cut it into one part per lane (by series)."""
        self._series_ids(conn, batch.samples)
        self._ensure_partitions(conn, [row.ts_ms for row in batch.samples])
        if len(batch.samples) < SPLIT_ROWS:
            return [batch]
        series = self._series
        samples: list[list[SampleRow]] = [[] for _ in range(LANES)]
        received: list[list[int]] = [[] for _ in range(LANES)]
        for row, at in zip(batch.samples, batch.received_ms, strict=True):
            lane = series[row.topic][0] % LANES
            samples[lane].append(row)
            received[lane].append(at)
        first = Batch(samples=samples[0], events=batch.events, rejected=batch.rejected, received_ms=received[0])
        return [first, *(Batch(samples=samples[n], received_ms=received[n]) for n in range(1, LANES))]

    def _guarded(self, lane: int, sink: str, work: Callable[[_Conn], _T]) -> _T:
        """Run ``work`` on a lane's connection; psycopg errors become ``RowsRefused`` or ``SinkUnavailable``."""
        conn = self._connection(lane)
        try:
            return work(conn)
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.FeatureNotSupported) as exc:
            if conn.broken:
                raise self._unavailable(str(exc).strip()) from exc
            raise RowsRefused(sink=sink, target=self.target, reason=str(exc).strip()) from exc
        except psycopg.Error as exc:  # connection lost, server shutting down, out of disk, ...
            if conn.broken or conn.closed or isinstance(exc, psycopg.OperationalError):
                self._drop(lane)
            raise self._unavailable(str(exc).strip() or type(exc).__name__) from exc

    def _write(self, lane: int, batch: Batch, sink: str) -> WriteReport:
        return self._guarded(lane, sink, lambda conn: self._retried(conn, batch, sink))

    def _retried(self, conn: _Conn, batch: Batch, sink: str) -> WriteReport:
        for attempt in range(_DEADLOCK_RETRIES):
            try:
                return self._commit(conn, batch, sink)
            except psycopg.errors.TransactionRollback:  # two processes on overlapping keys: try again
                if attempt == _DEADLOCK_RETRIES - 1:
                    raise
            except psycopg.errors.CheckViolation:
                # "no partition of relation": someone dropped a partition this writer knew (retention)
                if attempt == _DEADLOCK_RETRIES - 1 or self.hypertable:
                    raise
                self._partitions = set()
                self._ensure_partitions(conn, [row.ts_ms for row in batch.samples])
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _commit(self, conn: _Conn, batch: Batch, sink: str) -> WriteReport:
        inserted = events = 0
        with conn.transaction(), conn.cursor() as cursor:
            if batch.samples:
                self._copy(cursor, batch.samples, batch.received_ms)
                cursor.execute(self._samples_sql)
                inserted = cursor.rowcount
                cursor.execute(self._latest_sql)
            if batch.events:
                events = self._insert_events(cursor, batch.events)
            if batch.rejected:
                self._insert_rejected(cursor, batch.rejected, sink)
        return WriteReport(
            inserted=inserted,
            duplicates=len(batch.samples) - inserted,
            events=events,
            duplicate_events=len(batch.events) - events,
            dead_letters=len(batch.rejected),
        )

    def _copy(
        self, cursor: psycopg.Cursor[tuple[object, ...]], samples: Sequence[SampleRow], received: Sequence[int]
    ) -> None:
        series = self._series
        with cursor.copy(f"COPY _uns_staging ({_STAGING_NAMES}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_STAGING_TYPES)
            write = copy.write_row
            for row, at in zip(samples, received, strict=True):
                write(
                    (
                        series[row.topic][0],
                        row.ts_ms,
                        row.value,
                        row.value_text,
                        row.value_json,
                        row.quality,
                        row.historical,
                        row.source,
                        at,
                    )
                )

    def _insert_events(self, cursor: psycopg.Cursor[tuple[object, ...]], events: Sequence[EventRow]) -> int:
        unique = {event.event_key: event for event in events}.values()
        cursor.execute(
            f"INSERT INTO {self._schema}.mes_events (event_key, topic, path, event, ts, body, received)"  # noqa: S608
            " SELECT k, t, p, e, timestamptz 'epoch' + ms * interval '1 millisecond', b::jsonb, now()"
            " FROM unnest(%s::int8[], %s::text[], %s::text[], %s::text[], %s::int8[], %s::text[])"
            " AS u(k, t, p, e, ms, b) ON CONFLICT DO NOTHING",
            [
                [_signed(e.event_key) for e in unique],
                [e.topic for e in unique],
                [e.path for e in unique],
                [e.event for e in unique],
                [e.ts_ms for e in unique],
                [e.body for e in unique],
            ],
        )
        return cursor.rowcount

    def _insert_rejected(
        self, cursor: psycopg.Cursor[tuple[object, ...]], rejected: Sequence[Rejected], sink: str
    ) -> None:
        cursor.execute(
            f"INSERT INTO {self._schema}.dead_letters (sink, topic, field, reason, payload)"  # noqa: S608
            " SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[])",
            [sink, [r.topic for r in rejected], [r.field for r in rejected], [r.reason for r in rejected],
             [r.payload for r in rejected]],
        )  # fmt: skip
