"""What the MES time views read on every request, kept in memory beside the facts in DuckDB.

The facts (``uns.mes.facts``, ``uns.mes.count_facts``) stay the source of truth; this is a cache of
what every view asks for first, cheap to keep exact because the adapter sees every change:

- the paths with states and with counts (a scan of both tables: 4 ms on a month, growing with history);
- per fact path and built hour, the microseconds of each loss class (``facts.window_times`` summed
  them in SQL over the pieces of every hour of a month or year);
- per count path and built hour, total and good per order, and which hours have count facts;
- the small tables the edges and the units join: shifts, planned maintenance windows, work
  orders, product types (dropped whole by any event of their kind).

It is exact, not eventually right: ``FactBuilder`` and ``CountFacts`` tell it which hours they drop
(a relabel, a late or backfilled state or count, a shift, an order's start or complete: the rules
that delete them in DuckDB, on the writer before the events are acknowledged) and when they built
more; the change feed tells it every new path and changed table. A read that overlapped such a
change answers with what it loaded but does not keep it. What a read is handed never changes after
(a change puts a changed copy of a path's hours in its place), so a view may loop over it while the
writer drops and builds. A process without an adapter (``uns mes`` on a file, a read-only bench) has
no memo unless it attaches one; after a restart the memo is empty and is read again from DuckDB on
first use. Views find it through ``of(cursor)`` (the file the cursor reads).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar, cast

import duckdb

from uns.mes.changes import Change

__all__ = ["LOSSES", "CountSums", "Sums", "ViewMemo", "attach", "detach", "of"]

LOSSES = ("none", "performance", "availability", "planned")
"""The loss classes in the order of a memo's sums."""

Sums = tuple[int, int, int, int]
"""Microseconds of an hour per loss class, in ``LOSSES`` order."""

_DATABASE = "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
_HOURS = """SELECT h.path, h.hour, h.rules, f.loss, coalesce(sum(f.b - f.a), 0)::BIGINT
FROM mes_fact_hours h LEFT JOIN mes_fact_pieces f ON f.path = h.path AND f.hour = h.hour
WHERE h.path IN (SELECT unnest($paths::VARCHAR[])) AND h.hour >= $lo AND h.hour < $hi GROUP BY ALL"""
_ALL = (-(2**62), 2**62)

CountSums = tuple[tuple[str | None, int, int], ...]
"""A count path's hour of facts: (order, total, good) per order."""

T = TypeVar("T")
_TABLE_OF = {"shift": "shifts", "maintenance_order": "windows", "work_order": "orders", "product_type": "products"}
"""Event -> the small table it changes."""

_MEMOS: dict[str, ViewMemo] = {}
_MEMOS_LOCK = threading.Lock()
_KEYS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, str] = weakref.WeakKeyDictionary()


class ViewMemo:
    """Path sets and per-hour loss sums of one database, dropped exactly where stored events change them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoch = 0  # bumped by every new path: a load of the paths that overlapped one is not kept
        self._loading: dict[str, int] = {}
        """Paths being loaded -> how many loads of them are under way."""
        self._spoiled: set[str] = set()
        """Paths whose hours changed while being loaded: that load is used once, not kept."""
        self._pending: list[tuple[int, int]] = []
        """Hour ranges built since the loaded paths were read: read again on next use."""
        self._paths: tuple[frozenset[str], frozenset[str]] | None = None
        self._hours: dict[str, Mapping[int, tuple[str, Sums]]] = {}
        """Fact path -> its built hours -> (rules, sums); a loaded path lists every built hour.

        Each path's mapping, once kept, is never changed: a change puts a changed copy in its place, so a
        reader looping over one it was handed never sees it change (the same for ``_counts``)."""
        self._tables: dict[str, object] = {}
        self._table_gen: dict[str, int] = {}
        self._count_gen = 0  # bumped by every change of count facts: a load that overlapped one is not kept
        self._count_hours: frozenset[int] | None = None
        self._counts: dict[str, Mapping[int, CountSums]] = {}
        self._count_top: dict[str, int] = {}
        self._top: dict[str, int] = {}
        """Fact path -> the last hour it had when loaded (drops look no further)."""
        self.loads = 0
        """How many times something was read from DuckDB (tests and benches)."""

    # -- the writer's side: what changed -------------------------------------------------------

    def changed(self, changes: Sequence[Change]) -> None:
        """New paths and changed small tables (a ``ChangeFeed`` listener)."""
        self.tables_changed(changes)
        states = {c.path for c in changes if c.event == "machine_state"}
        counts = {c.path for c in changes if c.event == "production_count"}
        if not states and not counts:
            return
        with self._lock:
            self._epoch += 1  # a load of the paths under way may have missed these
            if self._paths is not None:
                self._paths = (self._paths[0] | states, self._paths[1] | counts)

    def dropped(self, touched: Callable[[str], bool], lo: int | None, hi: int | None) -> None:
        """Fact hours ``[lo, hi)`` (None: open) of the paths ``touched`` accepts are gone (``FactBuilder``)."""
        with self._lock:
            self._spoiled.update(path for path in self._loading if touched(path))
            changed: dict[str, Mapping[int, tuple[str, Sums]]] = {}
            for path, hours in self._hours.items():
                if not touched(path) or not hours:
                    continue
                if lo is None:  # rare (a first shift): every hour
                    gone = [h for h in hours if hi is None or h < hi]
                else:  # a state or label: from its hour to the last one loaded, no scan of a year's keys
                    gone = [h for h in range(lo, max(lo, hi if hi is not None else self._top[path] + 1)) if h in hours]
                if gone:
                    changed[path] = _without(hours, gone)
            self._hours.update(changed)

    def built(self, lo: int, hi: int) -> None:
        """Fact hours ``[lo, hi)`` of every state path were built (``FactBuilder``): read on next use."""
        with self._lock:
            self._spoiled.update(self._loading)  # a load under way may have missed them
            if self._hours:
                self._pending.append((lo, hi))

    def counts_built(self) -> None:
        """Count fact hours were built (``CountFacts``): the count facts are read again on next use."""
        with self._lock:
            self._count_gen += 1
            self._count_hours = None
            self._counts.clear()

    def tables_changed(self, changes: Sequence[Change]) -> None:
        """Drop the small tables the events change (shifts, maintenance windows, orders, products)."""
        names = {_TABLE_OF[c.event] for c in changes if c.event in _TABLE_OF}
        if names:
            with self._lock:
                for name in names:
                    self._tables.pop(name, None)
                    self._table_gen[name] = self._table_gen.get(name, 0) + 1

    def counts_dropped(self, hours: Iterable[int], since: int | None) -> None:
        """Count fact hours are gone: those listed, and with ``since`` every hour from it on (``CountFacts``)."""
        gone = set(hours)
        with self._lock:
            self._count_gen += 1
            if self._count_hours is not None:
                self._count_hours = frozenset(
                    h for h in self._count_hours if h not in gone and (since is None or h < since)
                )
            changed: dict[str, Mapping[int, CountSums]] = {}
            for path, hours_of in self._counts.items():
                drop = {h for h in gone if h in hours_of}
                if since is not None:
                    drop.update(h for h in range(since, self._count_top.get(path, since - 1) + 1) if h in hours_of)
                if drop:
                    changed[path] = _without(hours_of, drop)
            self._counts.update(changed)

    # -- the readers' side ---------------------------------------------------------------------

    def table(self, name: str, cursor: duckdb.DuckDBPyConnection, load: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """A small table as ``load`` reads it, kept until an event of its kind is stored."""
        with self._lock:
            if name in self._tables:
                return cast(T, self._tables[name])
            gen = self._table_gen.get(name, 0)
        value = load(cursor)
        with self._lock:
            self.loads += 1
            if self._table_gen.get(name, 0) == gen:
                self._tables[name] = value
        return value

    def count_hours(self, cursor: duckdb.DuckDBPyConnection) -> frozenset[int]:
        """The hours with count facts built."""
        with self._lock:
            if self._count_hours is not None:
                return self._count_hours
            gen = self._count_gen
        found = frozenset(
            int(row[0]) for row in cursor.execute("SELECT DISTINCT hour FROM mes_fact_count_hours").fetchall()
        )
        with self._lock:
            self.loads += 1
            if self._count_gen == gen:
                self._count_hours = found
        return found

    def counts(self, cursor: duckdb.DuckDBPyConnection, paths: Iterable[str]) -> dict[str, Mapping[int, CountSums]]:
        """Each count path's hours of facts: (order, total, good) per order in the hour (never changed after)."""
        wanted = sorted(set(paths))
        with self._lock:
            missing = [path for path in wanted if path not in self._counts]
            if not missing:
                return {path: self._counts[path] for path in wanted}
            gen = self._count_gen
        loaded: dict[str, dict[int, list[tuple[str | None, int, int]]]] = {path: {} for path in missing}
        rows = cursor.execute(
            "SELECT path, hour, oid, total, good FROM mes_fact_counts WHERE path IN (SELECT unnest($p::VARCHAR[]))",
            {"p": missing},
        ).fetchall()
        for path, hour, oid, total, good in rows:
            loaded[path].setdefault(int(hour), []).append((oid, int(total), int(good)))
        fresh: dict[str, Mapping[int, CountSums]] = {
            path: {h: tuple(items) for h, items in hours.items()} for path, hours in loaded.items()
        }
        with self._lock:
            self.loads += 1
            if self._count_gen == gen:
                for path, hours in fresh.items():
                    self._counts[path] = hours
                    self._count_top[path] = max(hours, default=-1)
            result = {path: self._counts[path] for path in wanted if path in self._counts}
        result.update(fresh)
        return result

    def paths(self, cursor: duckdb.DuckDBPyConnection) -> tuple[frozenset[str], frozenset[str]]:
        """Every path with states, and every path with counts."""
        with self._lock:
            if self._paths is not None:
                return self._paths
            epoch = self._epoch
        found = tuple(
            frozenset(row[0] for row in cursor.execute(f"SELECT DISTINCT path FROM {table}").fetchall())  # noqa: S608
            for table in ("mes_states", "mes_counts")
        )
        paths = (found[0], found[1])
        with self._lock:
            self.loads += 1
            if self._epoch == epoch and self._paths is None:
                self._paths = paths
        return paths

    def hours(
        self, cursor: duckdb.DuckDBPyConnection, paths: Iterable[str]
    ) -> dict[str, Mapping[int, tuple[str, Sums]]]:
        """Each fact path's built hours with their rules and sums (each mapping never changed after)."""
        wanted = sorted(set(paths))
        with self._lock:
            missing = [path for path in wanted if path not in self._hours]
            pending, self._pending = self._pending, []
            refresh = sorted(self._hours) if pending else []
            if not missing and not refresh:
                return {path: self._hours[path] for path in wanted}
            for path in (*missing, *refresh):
                self._loading[path] = self._loading.get(path, 0) + 1
        try:
            fresh = self._load(cursor, missing, [_ALL]) if missing else {}
            renewed = self._load(cursor, refresh, pending) if refresh else {}
        except BaseException:
            with self._lock:  # the built ranges stay to read next time, not lost with this failed read
                self._pending.extend(pending)
            raise
        finally:
            with self._lock:
                spoiled = self._spoiled & {*missing, *refresh}
                for path in (*missing, *refresh):
                    self._loading[path] -= 1
                    if not self._loading[path]:
                        del self._loading[path]
                        self._spoiled.discard(path)
        with self._lock:
            self.loads += 1
            for path, hours in fresh.items():
                if path not in spoiled:
                    self._hours[path] = hours
                    self._top[path] = max(hours, default=-1)
            if spoiled & set(refresh):  # changed while read: read those ranges again next time
                self._pending.extend(pending)
            for path in refresh:  # the hours built since, added (an hour not yet added is computed directly)
                known = self._hours.get(path)
                if known is None or path in spoiled:
                    continue
                stale = [h for lo, hi in pending for h in range(lo, hi) if h in known]
                updated = _without(known, stale)
                updated.update(renewed.get(path, {}))
                self._hours[path] = updated
                self._top[path] = max([self._top.get(path, -1), *renewed.get(path, {})])
            result = {path: self._hours[path] for path in wanted if path in self._hours}
        result.update(fresh)  # what this read loaded, kept or not
        return result

    @staticmethod
    def _load(
        cursor: duckdb.DuckDBPyConnection, paths: Sequence[str], ranges: Sequence[tuple[int, int]]
    ) -> dict[str, dict[int, tuple[str, Sums]]]:
        """The built hours of ``paths`` within ``ranges``, with their rules and sums."""
        loaded: dict[str, dict[int, tuple[str, list[int]]]] = {path: {} for path in paths}
        for lo, hi in _merged(ranges):  # each hour read once: overlapping ranges would add it twice
            params = {"paths": list(paths), "lo": lo, "hi": hi}
            for path, hour, rules, loss, micros in cursor.execute(_HOURS, params).fetchall():
                _, sums = loaded[path].setdefault(int(hour), (str(rules), [0, 0, 0, 0]))
                if loss is not None:
                    sums[LOSSES.index(loss)] += int(micros)
        return {p: {h: (r, (s[0], s[1], s[2], s[3])) for h, (r, s) in hours.items()} for p, hours in loaded.items()}


def _without(hours: Mapping[int, T], gone: Iterable[int]) -> dict[int, T]:
    """A copy of ``hours`` without ``gone`` (the kept mapping itself may be in a reader's hands)."""
    kept = dict(hours)  # a plain copy is ~30x faster than a filtering comprehension, then the few deletions
    for hour in gone:
        kept.pop(hour, None)
    return kept


def _merged(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``ranges`` as disjoint ranges covering the same hours."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def attach(cursor: duckdb.DuckDBPyConnection, memo: ViewMemo) -> Callable[[], None]:
    """Serve ``memo`` to every view on the database file ``cursor`` reads; returns the detach function.

    An in-memory database has no file to tell two apart by: it is served no memo.
    """
    key = _key(cursor)
    if not key:
        return lambda: None
    with _MEMOS_LOCK:
        _MEMOS[key] = memo
    return lambda: detach(key, memo)


def detach(key: str, memo: ViewMemo) -> None:
    """Stop serving ``memo`` for the database file ``key`` (if it is still the one attached)."""
    with _MEMOS_LOCK:
        if _MEMOS.get(key) is memo:
            del _MEMOS[key]


def of(cursor: duckdb.DuckDBPyConnection) -> ViewMemo | None:
    """The memo attached to the database ``cursor`` reads, if any."""
    if not _MEMOS:
        return None
    key = _key(cursor)
    return _MEMOS.get(key) if key else None


def _key(cursor: duckdb.DuckDBPyConnection) -> str:
    """The file ``cursor`` reads, asked once per cursor (a view asks for its memo several times)."""
    with _MEMOS_LOCK:
        known = _KEYS.get(cursor)
    if known is not None:
        return known
    row = cursor.execute(_DATABASE).fetchone()
    key = str(row[0]) if row is not None and row[0] else ""
    with _MEMOS_LOCK:
        _KEYS[cursor] = key
    return key
