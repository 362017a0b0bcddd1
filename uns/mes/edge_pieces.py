"""The directly computed edges of the facts path, classified in Python from a few plain reads.

A view answered from per-hour facts still computes its edges directly: the partial first and last
hours, the last ``microstop_s`` before its end, hours not built yet. Through the interval SQL of
``uns.mes.intervals`` that was ~110 DuckDB operators per request whatever the edge held (an hour of
nine paths: ~250 state rows, 50-90 ms on a quiet box, 4-5x that under load). Here the same rows are
read with plain, index-friendly selects (states, labels, shifts, maintenance windows of the paths)
and classified step by step as ``intervals._PIECES`` does (numbered as in its CTEs), in whole
microseconds. The SQL stays the reference: ``facts.bypassed()`` answers through it, and the facts
tests compare every view both ways, byte for byte, so the two implementations cannot drift apart
unnoticed.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

import duckdb
import orjson

from model.config import MesSection
from uns.clock import HOUR_US, at_epoch_us, epoch_us
from uns.mes.intervals import Piece
from uns.mes.losses import LossTable, loss_table
from uns.mes.memo import of as memo_of
from uns.mes.paths import in_subtree

__all__ = ["edge_pieces"]

_NEAR_US = (HOUR_US, 24 * HOUR_US)  # the state before an edge: looked for in the hour, the day before it

_STATES = """WITH t AS (
    SELECT path, max(ts) AS t0 FROM mes_states
    WHERE path IN (SELECT unnest($paths::VARCHAR[])) AND ts <= $at AND ts >= $near GROUP BY path)
SELECT s.path, epoch_us(s.ts), s.state, s.reason_code, t.t0 IS NOT NULL FROM mes_states s LEFT JOIN t ON s.path = t.path
WHERE s.path IN (SELECT unnest($paths::VARCHAR[])) AND s.ts >= $near AND s.ts >= coalesce(t.t0, $near) AND s.ts < $hi
ORDER BY s.path, s.ts, s.received, s.event_key"""
"""Each path's states from the one it had at ``at`` on, when it had one in the day before ``at``."""

_STATES_FROM_LAST = """WITH t AS (
    SELECT path, max(ts) AS t0 FROM mes_states
    WHERE path IN (SELECT unnest($paths::VARCHAR[])) AND ts <= $at GROUP BY path)
SELECT s.path, epoch_us(s.ts), s.state, s.reason_code FROM mes_states s JOIN t ON s.path = t.path
WHERE s.ts >= t.t0 AND s.ts < $hi
ORDER BY s.path, s.ts, s.received, s.event_key"""
"""Paths silent for a day before the edge: their rows from the state they had then on."""

_LABELS = """SELECT path, epoch_us(start_ts), epoch_us(end_ts), reason_code, state,
    epoch_us(ts), epoch_us(received), event_key
FROM mes_reasons WHERE path IN (SELECT unnest($paths::VARCHAR[])) AND start_ts < $hi AND end_ts > $lo"""

_SHIFTS = """SELECT path, shift_id, epoch_us(start_ts), epoch_us(end_ts), breaks, epoch_us(ts), epoch_us(received),
    event_key FROM mes_shifts WHERE path IN (SELECT unnest($paths::VARCHAR[]))"""

_ALL_SHIFTS = """SELECT path, shift_id, epoch_us(start_ts), epoch_us(end_ts), breaks, epoch_us(ts), epoch_us(received),
    event_key FROM mes_shifts"""

_WINDOWS = """SELECT path, epoch_us(wa), epoch_us(wb) FROM mes_maintenance_windows
WHERE path IN (SELECT unnest($paths::VARCHAR[]))"""
_ALL_WINDOWS = "SELECT path, epoch_us(wa), epoch_us(wb) FROM mes_maintenance_windows"

_Row = tuple[int, int, str | None]
"""A state row: ts (µs), state, reason code."""


def _ancestors(paths: Sequence[str]) -> list[str]:
    """Every path and each of its ancestors (shifts and maintenance windows there apply below)."""
    found: set[str] = set()
    for path in paths:
        parts = path.split("/")
        found.update("/".join(parts[:n]) for n in range(1, len(parts) + 1))
    return sorted(found)


def _state_rows(
    cursor: duckdb.DuckDBPyConnection, paths: Sequence[str], data_lo: int, data_hi: int
) -> dict[str, list[_Row]]:
    """Per path, its states from the one it had at ``data_lo`` (or its first) until ``data_hi``, in order."""
    rows: dict[str, list[_Row]] = {}
    found: dict[str, list[_Row]] = {}
    missing = list(paths)
    for near in _NEAR_US:  # ``since``: from the state active at data_lo on, looked for close to it first
        params = {
            "paths": missing,
            "at": at_epoch_us(data_lo),
            "near": at_epoch_us(data_lo - near),
            "hi": at_epoch_us(data_hi),
        }
        rows = {}
        settled: set[str] = set()
        for path, ts, state, reason, known in cursor.execute(_STATES, params).fetchall():
            rows.setdefault(path, []).append((int(ts), int(state), reason))
            if known:
                settled.add(path)
        found.update((path, rows[path]) for path in settled)
        missing = [path for path in missing if path not in settled]
        if not missing:
            break
    if missing:  # no state in the day before: the last one ever, else (none before) every state is later
        params = {"paths": missing, "at": at_epoch_us(data_lo), "hi": at_epoch_us(data_hi)}
        older: dict[str, list[_Row]] = {}
        for path, ts, state, reason in cursor.execute(_STATES_FROM_LAST, params).fetchall():
            older.setdefault(path, []).append((int(ts), int(state), reason))
        for path in missing:
            found[path] = older.get(path) or rows.get(path, [])
    return found


_St = tuple[int, int, int, str | None, bool]
"""A state interval: a, b, state, reason code, whether the data ends with it (its path's last state)."""

_Label = tuple[int, int, str | None, int | None, tuple[int, int, int]]
"""A label cut to the runs' reach: a, b, reason code, state, its order (ts, received, key)."""

_Run = tuple[int, int, float | None]
"""A piece of the states as labelled: a, b, length of its stop run (s) when it is one and closed."""


def _intervals(rows: Sequence[_Row], data_hi: int) -> list[_St]:
    """``st0`` to ``st``: each state until the next (the last until ``data_hi``), empty ones left out."""
    spans: list[_St] = []
    for index, (ts, state, reason) in enumerate(rows):
        last = index + 1 == len(rows)
        end = max(data_hi, ts) if last else rows[index + 1][0]
        if end > ts:
            spans.append((ts, end, state, reason, last))
    return spans


def _latest(labels: Sequence[_Label], a: int, b: int) -> _Label | None:
    """The newest label covering ``[a, b)`` (the SQL's ``row_number() ... = 1``)."""
    return max((item for item in labels if item[0] <= a and item[1] >= b), key=lambda item: item[4], default=None)


def _runs(spans: Sequence[_St], labels: Sequence[_Label], lo: int, hi: int, table: LossTable) -> list[_Run]:
    """``rpt`` to ``runs``: the states split at label edges and labelled, runs of stops, those meeting ``[lo, hi)``."""
    points = sorted({t for a, b, *_ in spans for t in (a, b)} | {t for la, lb, *_ in labels for t in (la, lb)})
    starts = [span[0] for span in spans]
    pieces: list[tuple[int, int, bool, int]] = []
    for a, b in itertools.pairwise(points):
        index = bisect.bisect_right(starts, a) - 1
        if index < 0 or spans[index][1] < b:
            continue
        _, end, state, _, last = spans[index]
        label = _latest(labels, a, b)
        eff = state if label is None or label[3] is None else label[3]
        kind = 0 if 10000 <= eff <= 29999 else 1 if table.class_of(eff) == "planned" else 2
        pieces.append((a, b, last and b == end, kind))
    out: list[_Run] = []
    first = 0
    while first < len(pieces):
        stop = first
        while stop + 1 < len(pieces) and pieces[stop + 1][3] == pieces[first][3]:
            stop += 1
        run = pieces[first : stop + 1]
        length: float | None = None
        if pieces[first][3] == 2 and not any(item[2] for item in run):
            length = (run[-1][1] // 1000 - run[0][0] // 1000) / 1000.0  # epoch_ms, as the SQL
        out += [(a, b, length) for a, b, _, _ in run if b > lo and a < hi]
        first = stop + 1
    return out


_Shift = tuple[str, int, int, tuple[tuple[int, int], ...]]
"""A shift's latest version: path, start, end (µs) and its breaks (µs)."""


def _shifts(cursor: duckdb.DuckDBPyConnection, owners: Sequence[str] | None) -> list[_Shift]:
    """``shf0``: the latest version of each (path, shift id) at ``owners`` (None: everywhere)."""
    sql, params = (_SHIFTS, {"paths": list(owners)}) if owners is not None else (_ALL_SHIFTS, {})
    best: dict[tuple[str, str], tuple[tuple[int, int, int], _Shift]] = {}
    for path, shift_id, sa, sb, breaks, ts, received, key in cursor.execute(sql, params).fetchall():
        rank = (int(ts), int(received), int(key))
        slot = (str(path), str(shift_id))
        if slot not in best or rank > best[slot][0]:
            best[slot] = (rank, (str(path), int(sa), int(sb), tuple(_breaks(breaks))))
    return [item for _, item in best.values()]


def _all_shifts(cursor: duckdb.DuckDBPyConnection) -> list[_Shift]:
    return _shifts(cursor, None)


def _windows(cursor: duckdb.DuckDBPyConnection, owners: Sequence[str] | None) -> list[tuple[str, int, int | None]]:
    """Planned maintenance windows at ``owners`` (None: everywhere): path, start, end (None: open)."""
    sql, params = (_WINDOWS, {"paths": list(owners)}) if owners is not None else (_ALL_WINDOWS, {})
    rows = cursor.execute(sql, params).fetchall()
    return [(str(path), int(wa), None if wb is None else int(wb)) for path, wa, wb in rows]


def _all_windows(cursor: duckdb.DuckDBPyConnection) -> list[tuple[str, int, int | None]]:
    return _windows(cursor, None)


def _breaks(text: object) -> list[tuple[int, int]]:
    """A shift's breaks in µs; a break without both ends has no edges (as SQL's NULL)."""
    if not isinstance(text, str):
        return []
    out = []
    for item in orjson.loads(text) or ():
        a, b = (item.get("start_ms"), item.get("end_ms")) if isinstance(item, dict) else (None, None)
        if isinstance(a, int | float) and isinstance(b, int | float):
            out.append((int(a) * 1000, int(b) * 1000))
    return out


def _loss(eff: int, table: LossTable, *, planned: bool, stop_s: float | None, micro: float) -> str:
    """The final ``CASE`` of the SQL."""
    listed = table.class_of(eff)
    if 10000 <= eff <= 29999:
        return "none"
    if listed == "planned" or planned:
        return "planned"
    if listed == "performance":
        return "performance"
    if 30000 <= eff <= 39999 or eff < 10000 or eff > 229999:
        return "availability"
    if stop_s is not None and stop_s < micro:
        return "performance"
    return "availability"


def edge_pieces(
    cursor: duckdb.DuckDBPyConnection,
    section: MesSection,
    *,
    paths: Sequence[str],
    start: datetime,
    end: datetime,
    cuts: Sequence[datetime] = (),
    data_end: datetime | None = None,
) -> list[Piece]:
    """``intervals.pieces(..., bounded=True)``, computed in Python: the same pieces, in the same order."""
    if not paths or end <= start:
        return []
    table = loss_table(section)
    micro = section.microstop_s
    lo, hi = epoch_us(start), epoch_us(end)
    data_hi = max(hi, epoch_us(data_end or end))
    data_lo = epoch_us(start - timedelta(seconds=micro))
    unique = sorted(set(paths))
    states = _state_rows(cursor, unique, data_lo, data_hi)
    labels: dict[str, list[_Label]] = {}
    run_lo, run_hi = start - timedelta(seconds=micro), end + timedelta(seconds=micro)
    reach = (epoch_us(run_lo), epoch_us(run_hi))  # ``lab``: cut where no run shorter than microstop_s reaches
    for path, la, lb, reason, state, ts, received, key in cursor.execute(
        _LABELS, {"paths": unique, "lo": run_lo, "hi": run_hi}
    ).fetchall():
        labels.setdefault(path, []).append(
            (max(int(la), reach[0]), min(int(lb), reach[1]), reason, None if state is None else int(state),
             (int(ts), int(received), int(key)))
        )  # fmt: skip
    owners = _ancestors(unique)
    memo = memo_of(cursor)
    if memo is not None:  # small tables kept in memory until a shift or maintenance order is stored
        shifts = memo.table("shifts", cursor, _all_shifts)
        stored = memo.table("windows", cursor, _all_windows)
    else:
        shifts = _shifts(cursor, owners)
        stored = _windows(cursor, owners)
    by_owner: dict[str, list[_Shift]] = {}
    for shift in shifts:
        by_owner.setdefault(shift[0], []).append(shift)
    windows = [(path, wa, data_hi if wb is None else wb) for path, wa, wb in stored if wa < hi]
    extra = [lo, hi, *(c for c in map(epoch_us, cuts) if lo < c < hi)]
    found: list[Piece] = []
    for path in unique:
        spans = _intervals(states.get(path, []), data_hi)
        if not spans or spans[-1][1] <= lo:
            continue
        mine = labels.get(path, [])
        runs = _runs(spans, mine, lo, hi, table)
        run_starts = [run[0] for run in runs]
        applying = [shift for owner in _ancestors([path]) for shift in by_owner.get(owner, ())]
        has_shift = bool(applying)
        shf = [(sa, sb, brk) for _, sa, sb, brk in applying if sa <= hi and sb >= lo]
        breaks = [pair for _, _, pairs in shf for pair in pairs]
        maint = [(ma, mb) for owner, ma, mb in windows if in_subtree(path, owner) and mb > lo]
        points = {*extra}
        for a, b, *_ in spans:
            if b > lo:
                points.update((a, b))
        for la, lb, *_ in mine:
            points.update((la, lb))
        for sa, sb, _ in shf:
            points.update((sa, sb))
        for ba, bb in breaks:
            points.update((ba, bb))
        for ma, mb in maint:
            points.update((ma, mb))
        edges = sorted(t for t in points if lo <= t <= hi)
        starts = [span[0] for span in spans]
        for a, b in itertools.pairwise(edges):
            index = bisect.bisect_right(starts, a) - 1
            if index < 0 or spans[index][1] < b:
                continue  # before the path's first state: no data
            sa_, _, state, reason, _ = spans[index]
            stop_s = runs[bisect.bisect_right(run_starts, a) - 1][2]
            label = _latest(mine, a, b)
            eff = state if label is None or label[3] is None else label[3]
            why = reason if label is None or label[2] is None else label[2]
            planned = (
                any(ba <= a and bb >= b for ba, bb in breaks)
                or any(ma <= a and mb >= b for ma, mb in maint)
                or (has_shift and not any(x <= a and y >= b for x, y, _ in shf))
            )
            loss = _loss(eff, table, planned=planned, stop_s=stop_s, micro=micro)
            found.append(
                Piece(path=path, start=at_epoch_us(a), end=at_epoch_us(b), state=eff, machine_state=state,
                      reason_code=why, loss=loss, stop_start=at_epoch_us(sa_))
            )  # fmt: skip
    return found
