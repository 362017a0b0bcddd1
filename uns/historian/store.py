"""Commit batches of rows to DuckDB: series ids, de-duplication, Arrow inserts, one transaction each.

Runs on the store's one writer thread only (``uns.store.writer``), which owns the read-write connection.

A sample's identity is its series, millisecond, value and quality: two different values of one
series in one millisecond (a burst stamped with its receive time, a fast counter) are both stored,
numbered in arrival order by ``seq``; the same value and quality again in that millisecond is a
re-delivery (a QoS 1 DUP, a retained replay, a replay window) and is dropped.

De-duplication without an index on ``samples``: the store remembers the newest committed timestamp
per series. A sample newer than that is new by construction (the live path: a plain Arrow append).
Only an older or equal one (a replayed retained value, store-and-forward backfill, a broker
re-delivery after a crash, the next value of a burst split across batches) is looked up in the
table, in one join per batch.

The ``latest`` table holds the last arrived sample of the newest millisecond: only a newer sample,
or a new value in that same millisecond, replaces it, so no older sample (backfill, a late delivery,
a good value from before a death) ever becomes "latest". A series has a ``latest`` row exactly when
the store holds a newest timestamp for it, so a commit inserts the rows of new series and updates
the others in place.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence

import duckdb
import orjson
import pyarrow as pa

from uns.clock import now_ms
from uns.historian.rows import EventRow, Rejected, SampleRow, envelope_of
from uns.store.database import ARROW_ROWS, insert_arrow, register_arrow

__all__ = ["Batch", "CommitReport", "Store"]

log = logging.getLogger(__name__)

_TS = pa.timestamp("ms", tz="UTC")
_SAMPLE_SCHEMA = pa.schema(
    [
        ("series_id", pa.uint32()),
        ("ts", _TS),
        ("value", pa.float64()),
        ("value_text", pa.string()),
        ("value_json", pa.string()),
        ("quality", pa.string()),
        ("historical", pa.bool_()),
        ("source", pa.string()),
        ("received", _TS),
        ("seq", pa.uint32()),
    ]
)
_COLUMNS = ", ".join(_SAMPLE_SCHEMA.names)
_INSERT_SAMPLES = f"INSERT INTO samples ({_COLUMNS}) SELECT {_COLUMNS} FROM {ARROW_ROWS}"  # noqa: S608  (our names)
_INSERT_LATEST = f"INSERT INTO latest ({_COLUMNS}) SELECT {_COLUMNS} FROM {ARROW_ROWS} WHERE first_latest"  # noqa: S608
_UPDATE_LATEST = (
    "UPDATE latest SET "  # noqa: S608  (our names)
    + ", ".join(f"{name} = a.{name}" for name in _SAMPLE_SCHEMA.names if name != "series_id")
    + f" FROM {ARROW_ROWS} a WHERE latest.series_id = a.series_id AND a.newer_latest"
)
"""The series' newest rows that replace a stored ``latest`` row: its key kept, the other columns set in place.

Of the ways to write them this is the cheapest (a one-off comparison, docs/benchmarks.md "A commit's fixed
cost"; ``bench/historian.py --part c`` times the whole commit): ``INSERT OR REPLACE`` and ``INSERT ... ON
CONFLICT DO UPDATE`` each cost ~2 ms more of a 25-row commit's process CPU, ~4.3 ms more of a 10k-row one's."""
_Fresh = tuple[int, SampleRow, int, int]
"""A sample to insert: (series_id, row, received_ms, seq)."""
_Identity = tuple[float | None, str | None, str | None, str]
"""What tells two samples of one series and millisecond apart: value columns and quality."""


@dataclasses.dataclass(slots=True)
class Batch:
    """What one commit writes; filled by the service on the event loop, then handed to the writer."""

    samples: list[SampleRow] = dataclasses.field(default_factory=list)
    events: list[EventRow] = dataclasses.field(default_factory=list)
    rejected: list[Rejected] = dataclasses.field(default_factory=list)
    received_ms: list[int] = dataclasses.field(default_factory=list)
    """Receive time of each sample (same order as ``samples``)."""

    def __len__(self) -> int:
        return len(self.samples) + len(self.events) + len(self.rejected)

    def halves(self) -> tuple[Batch, Batch]:
        """Two non-empty batches holding this one's rows (of two rows or more), to find a row a database refuses."""
        half_s, half_e, half_r = len(self.samples) // 2, len(self.events) // 2, len(self.rejected) // 2
        if not (half_s or half_e or half_r):  # at most one row of each kind: split by kind
            if self.samples:
                return Batch(self.samples, [], [], self.received_ms), Batch([], self.events, self.rejected, [])
            return Batch([], self.events, [], []), Batch([], [], self.rejected, [])
        first = Batch(self.samples[:half_s], self.events[:half_e], self.rejected[:half_r], self.received_ms[:half_s])
        second = Batch(self.samples[half_s:], self.events[half_e:], self.rejected[half_r:], self.received_ms[half_s:])
        return first, second


@dataclasses.dataclass(frozen=True, slots=True)
class CommitReport:
    """What a commit did."""

    inserted: int
    duplicates: int
    events: int
    duplicate_events: int
    rejected: int
    new_series: int
    oldest_late_ms: int | None
    """The oldest inserted sample that was not newer than its series' previous newest (rollups redo it)."""
    seconds: float


@dataclasses.dataclass(slots=True)
class _Millisecond:
    """A series' values in one millisecond of a batch, once there is more than one."""

    identities: set[_Identity]
    count: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Series:
    series_id: int
    datatype: str | None
    unit: str | None
    unbound: bool


class Store:
    """The writer side of the historian database.

    Args:
        connection: the read-write connection (``Database.connection``), used from one thread.
        max_series: series kept at most; a sample of a further series is dead-lettered (field
            ``series``), so a flood of new topics cannot take the memory of the series table.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, *, max_series: int = 1_000_000) -> None:
        self._db = connection
        self._max_series = max_series
        self.series_refused = 0
        """Samples dead-lettered because their series would pass ``max_series``."""
        self._series: dict[str, _Series] = {}
        self._newest: dict[int, int] = {}
        self._next_id = 1
        self._load()

    @property
    def series_count(self) -> int:
        """Series known to the database."""
        return len(self._series)

    def _load(self) -> None:
        rows = self._db.execute("SELECT topic, series_id, datatype, unit, unbound FROM series").fetchall()
        for topic, series_id, datatype, unit, unbound in rows:
            self._series[topic] = _Series(series_id, datatype, unit, bool(unbound))
            self._next_id = max(self._next_id, series_id + 1)
        # from the latest values, not the raw samples: retention trims raw samples but never the
        # latest value, and a sample older than it must still not replace it after a restart
        newest = self._db.execute("SELECT series_id, epoch_ms(ts) FROM latest").fetchall()
        self._newest = {series_id: int(ms) for series_id, ms in newest}
        log.info("historian store: %d series, newest timestamps loaded", len(self._series))

    def commit(self, batch: Batch) -> CommitReport:
        """Write one batch in one transaction; on failure nothing of it is kept and the error propagates."""
        started = time.perf_counter()
        received_ms = now_ms()
        self._refuse_series(batch)
        self._db.execute("BEGIN TRANSACTION")
        undo: list[tuple[str, _Series | None]] = []
        try:
            new_series = self._register_series(batch.samples, received_ms, undo)
            rows, late, duplicates = self._fresh_rows(batch)
            newest = self._insert_samples(rows)
            events, duplicate_events = self._insert_events(batch.events, received_ms)
            self._insert_rejected(batch.rejected, received_ms)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._undo_series(undo)
            raise
        self._newest.update(newest)  # only once committed: a rolled-back batch leaves the marks as they were
        return CommitReport(
            inserted=len(rows),
            duplicates=duplicates,
            events=events,
            duplicate_events=duplicate_events,
            rejected=len(batch.rejected),
            new_series=new_series,
            oldest_late_ms=late,
            seconds=time.perf_counter() - started,
        )

    def commit_isolating(self, batch: Batch) -> CommitReport:
        """Commit, isolating a row DuckDB refuses so it cannot hold back the good ones.

        A refused batch is committed in halves, down to the single row that fails, which goes to
        ``dead_letters`` (field ``database``). If even the dead letter cannot be written (disk full,
        file gone), the error propagates.
        """
        try:
            return self.commit(batch)
        except duckdb.Error as exc:
            if len(batch) <= 1:
                return self.commit(_as_dead_letter(batch, exc))
            log.warning("historian: a batch of %d rows failed (%s); committing it in halves", len(batch), exc)
        first, second = batch.halves()
        return _merge(self.commit_isolating(first), self.commit_isolating(second))

    # -- series ---------------------------------------------------------------------------------

    def _refuse_series(self, batch: Batch) -> None:
        """Move the samples of new series past ``max_series`` to the batch's dead letters (known ones stay)."""
        room = self._max_series - len(self._series)
        if all(row.topic in self._series for row in batch.samples):
            return
        new: set[str] = set()
        samples: list[SampleRow] = []
        received: list[int] = []
        for row, at in zip(batch.samples, batch.received_ms, strict=True):
            if row.topic not in self._series and row.topic not in new:
                if len(new) >= room:
                    reason = (
                        f"new series not stored: {len(self._series)} series, historian.max_series={self._max_series}"
                    )
                    batch.rejected.append(Rejected(row.topic, "series", reason, orjson.dumps(envelope_of(row))))
                    self.series_refused += 1
                    continue
                new.add(row.topic)
            samples.append(row)
            received.append(at)
        batch.samples, batch.received_ms = samples, received

    def _undo_series(self, undo: list[tuple[str, _Series | None]]) -> None:
        """Put the series map back as it was before a rolled-back batch: its new series gone, changed ones restored."""
        for topic, before in reversed(undo):
            if before is None:
                self._series.pop(topic, None)
            else:
                self._series[topic] = before

    def _register_series(
        self, samples: Sequence[SampleRow], now_ms: int, undo: list[tuple[str, _Series | None]]
    ) -> int:
        """Register the batch's new series and metadata changes; ``undo`` gets what to restore on a rollback.

        ``undo`` is filled as the map changes, so a failure part-way (the series insert refused) still
        leaves the map restorable: a series kept in memory but rolled back in DuckDB would get samples
        with no series row, and a metadata change kept in memory only would never be written.
        """
        added: list[tuple[int, str, str, str, str, str | None, str | None, bool, int]] = []
        changed: list[tuple[str | None, str | None, bool, int]] = []
        for row in samples:
            known = self._series.get(row.topic)
            if known is None:
                known = _Series(self._next_id, row.datatype, row.unit, row.unbound)
                self._next_id += 1
                self._series[row.topic] = known
                undo.append((row.topic, None))
                added.append(
                    (
                        known.series_id,
                        row.topic,
                        row.path,
                        row.class_word,
                        row.metric,
                        row.datatype,
                        row.unit,
                        row.unbound,
                        now_ms,
                    )
                )
                continue
            # a sample without a datatype (a null sent without one) or unit keeps the series' own
            datatype, unit = row.datatype or known.datatype, row.unit or known.unit
            if (known.datatype, known.unit, known.unbound) != (datatype, unit, row.unbound):
                undo.append((row.topic, known))
                known = self._series[row.topic] = _Series(known.series_id, datatype, unit, row.unbound)
                changed.append((datatype, unit, row.unbound, known.series_id))
        if added:  # an Arrow insert: 10k new topics at once (a restart, a new plant) must not stall ingest
            columns = list(zip(*added, strict=True))
            self._insert(
                "series",
                pa.table(
                    {
                        "series_id": pa.array(columns[0], pa.uint32()),
                        "topic": columns[1],
                        "path": columns[2],
                        "class": columns[3],
                        "metric": columns[4],
                        "datatype": pa.array(columns[5], pa.string()),
                        "unit": pa.array(columns[6], pa.string()),
                        "unbound": pa.array(columns[7], pa.bool_()),
                        "first_seen": pa.array(columns[8], _TS),
                    }
                ),
            )
        if changed:
            self._db.executemany("UPDATE series SET datatype = ?, unit = ?, unbound = ? WHERE series_id = ?", changed)
        return len(added)

    # -- samples --------------------------------------------------------------------------------

    def _fresh_rows(self, batch: Batch) -> tuple[list[_Fresh], int | None, int]:
        """The batch's rows not yet stored, as (series_id, row, received_ms, seq), oldest first.

        ``seq`` numbers a series' different values within one millisecond in arrival order.
        """
        seen: dict[tuple[int, int], SampleRow | _Millisecond] = {}
        fresh: list[_Fresh] = []
        suspects: list[_Fresh] = []
        duplicates = 0
        for row, received in zip(batch.samples, batch.received_ms, strict=True):
            series_id = self._series[row.topic].series_id
            key = (series_id, row.ts_ms)
            earlier = seen.get(key)
            if earlier is None:  # the common case: first value of this series and ms in the batch
                seen[key] = row
                seq = 0
            else:
                if isinstance(earlier, SampleRow):
                    earlier = seen[key] = _Millisecond({_identity(earlier)}, 1)
                identity = (row.value, row.value_text, row.value_json, row.quality)  # _identity, inlined: bursts
                if identity in earlier.identities:
                    duplicates += 1
                    continue
                earlier.identities.add(identity)
                seq = earlier.count
                earlier.count += 1
            if row.ts_ms > self._newest.get(series_id, -1):
                fresh.append((series_id, row, received, seq))
            else:
                suspects.append((series_id, row, received, seq))
        late: int | None = None
        if suspects:
            stored = self._stored_matches(suspects)
            next_seq: dict[tuple[int, int], int] = {}
            for index, (series_id, row, received, _) in enumerate(suspects):
                match = stored.get(index)
                if match is not None and match[0]:
                    duplicates += 1
                    continue
                # a new value in a millisecond already stored arrived after the values stored there
                key = (series_id, row.ts_ms)
                seq = next_seq.get(key, -1 if match is None else match[1]) + 1
                next_seq[key] = seq
                fresh.append((series_id, row, received, seq))
                late = row.ts_ms if late is None else min(late, row.ts_ms)
        # stable: a series' values of one millisecond stay in arrival (seq) order
        fresh.sort(key=lambda item: item[1].ts_ms)
        return fresh, late, duplicates

    def _stored_matches(self, suspects: Sequence[_Fresh]) -> dict[int, tuple[bool, int]]:
        """Per index of a suspect whose millisecond holds stored samples: is it one of them, and their top seq."""
        probe = pa.table(
            {
                "i": pa.array(range(len(suspects)), pa.uint32()),
                "series_id": pa.array([s[0] for s in suspects], pa.uint32()),
                "ts": pa.array([s[1].ts_ms for s in suspects], _TS),
                "value": pa.array([s[1].value for s in suspects], pa.float64()),
                "value_text": pa.array([s[1].value_text for s in suspects], pa.string()),
                "value_json": pa.array([s[1].value_json for s in suspects], pa.string()),
                "quality": pa.array([s[1].quality for s in suspects], pa.string()),
            }
        )
        low = min(s[1].ts_ms for s in suspects)
        high = max(s[1].ts_ms for s in suspects)
        found = (
            self._with_table("probe", probe)
            .execute(
                "SELECT p.i, bool_or(s.value IS NOT DISTINCT FROM p.value AND s.value_text IS NOT DISTINCT FROM"
                " p.value_text AND s.value_json::VARCHAR IS NOT DISTINCT FROM p.value_json"
                " AND s.quality::VARCHAR = p.quality), max(s.seq)"
                " FROM samples s JOIN probe p ON s.series_id = p.series_id AND s.ts = p.ts"
                " WHERE s.ts BETWEEN make_timestamptz(? * 1000) AND make_timestamptz(? * 1000) GROUP BY p.i",
                [low, high],
            )
            .fetchall()
        )
        self._db.unregister("probe")
        return {int(i): (bool(same), int(top)) for i, same, top in found}

    def _insert_samples(self, rows: Sequence[_Fresh]) -> dict[int, int]:
        """Append ``rows`` to ``samples`` and put each series' newest into ``latest``, from one Arrow table.

        Answers each series' new newest timestamp (those that got a ``latest`` row), found in this one pass.
        One Arrow table for every statement, read without a registration (``insert_arrow``): of the writer's
        ~10 ms per commit of a few rows, each registration was ~1 ms of fixed cost whatever the rows.
        A series' first ``latest`` row is inserted, a known one's updated in place; a statement with no
        row to write is not run.
        """
        if not rows:
            return {}
        # rows are sorted by (ts, seq): a series' last row is its newest, the latest unless older than the stored
        last: dict[int, int] = {}
        for index, item in enumerate(rows):
            last[item[0]] = index
        newest: dict[int, int] = {}
        first = [False] * len(rows)
        newer = [False] * len(rows)
        known = self._newest  # exactly the series with a latest row (loaded from it, kept once committed)
        for series_id, index in last.items():
            ts_ms = rows[index][1].ts_ms
            stored = known.get(series_id)
            if stored is None:
                first[index] = True
            elif ts_ms >= stored:
                newer[index] = True
            else:
                continue
            newest[series_id] = ts_ms
        table = (
            _sample_table(rows)
            .append_column("first_latest", pa.array(first, pa.bool_()))
            .append_column("newer_latest", pa.array(newer, pa.bool_()))
        )
        statements = [_INSERT_SAMPLES]
        if any(first):
            statements.append(_INSERT_LATEST)
        if any(newer):
            statements.append(_UPDATE_LATEST)
        insert_arrow(self._db, table, *statements)
        return newest

    def _with_table(self, name: str, table: pa.Table) -> duckdb.DuckDBPyConnection:
        """Make an Arrow table queryable under ``name`` (unregister it after use)."""
        register_arrow(self._db, name, table)
        return self._db

    def _insert(self, target: str, table: pa.Table) -> None:
        """Insert an Arrow table whose column names are the target's (a zero-copy scan)."""
        columns = ", ".join(table.schema.names)
        insert_arrow(self._db, table, f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {ARROW_ROWS}")  # noqa: S608

    # -- events and dead letters ----------------------------------------------------------------

    def _insert_events(self, events: Sequence[EventRow], now_ms: int) -> tuple[int, int]:
        if not events:
            return 0, 0
        unique = {event.event_key: event for event in events}
        probe = pa.table({"event_key": pa.array(list(unique), pa.uint64())})
        stored = {
            int(key)
            for (key,) in self._with_table("probe", probe)
            .execute("SELECT m.event_key FROM mes_events m JOIN probe p ON m.event_key = p.event_key")
            .fetchall()
        }
        self._db.unregister("probe")
        fresh = [event for key, event in unique.items() if key not in stored]
        if fresh:
            rows = pa.table(
                {
                    "event_key": pa.array([e.event_key for e in fresh], pa.uint64()),
                    "topic": [e.topic for e in fresh],
                    "path": [e.path for e in fresh],
                    "event": [e.event for e in fresh],
                    "ts": pa.array([e.ts_ms for e in fresh], _TS),
                    "body": [e.body for e in fresh],
                    "received": pa.array([now_ms] * len(fresh), _TS),
                }
            )
            self._insert("mes_events", rows)
        return len(fresh), len(events) - len(fresh)

    def _insert_rejected(self, rejected: Sequence[Rejected], now_ms: int) -> None:
        if not rejected:
            return
        rows = pa.table(
            {
                "received": pa.array([now_ms] * len(rejected), _TS),
                "topic": [r.topic for r in rejected],
                "field": [r.field for r in rejected],
                "reason": [r.reason for r in rejected],
                "payload": pa.array([r.payload for r in rejected], pa.binary()),
            }
        )
        self._insert("dead_letters", rows)


def _as_dead_letter(batch: Batch, error: duckdb.Error) -> Batch:
    topic = (batch.samples or batch.events or batch.rejected)[0].topic
    return Batch(rejected=[Rejected(topic, "database", f"the database refused it: {error}", b"")])


def _merge(a: CommitReport, b: CommitReport) -> CommitReport:
    lates = [ms for ms in (a.oldest_late_ms, b.oldest_late_ms) if ms is not None]
    return CommitReport(
        inserted=a.inserted + b.inserted,
        duplicates=a.duplicates + b.duplicates,
        events=a.events + b.events,
        duplicate_events=a.duplicate_events + b.duplicate_events,
        rejected=a.rejected + b.rejected,
        new_series=a.new_series + b.new_series,
        oldest_late_ms=min(lates) if lates else None,
        seconds=a.seconds + b.seconds,
    )


def _identity(row: SampleRow) -> _Identity:
    return (row.value, row.value_text, row.value_json, row.quality)


def _sample_table(rows: Sequence[_Fresh]) -> pa.Table:
    return pa.table(
        [
            pa.array([r[0] for r in rows], pa.uint32()),
            pa.array([r[1].ts_ms for r in rows], _TS),
            pa.array([r[1].value for r in rows], pa.float64()),
            pa.array([r[1].value_text for r in rows], pa.string()),
            pa.array([r[1].value_json for r in rows], pa.string()),
            pa.array([r[1].quality for r in rows], pa.string()),
            pa.array([r[1].historical for r in rows], pa.bool_()),
            pa.array([r[1].source for r in rows], pa.string()),
            pa.array([r[2] for r in rows], _TS),
            pa.array([r[3] for r in rows], pa.uint32()),
        ],
        schema=_SAMPLE_SCHEMA,
    )
