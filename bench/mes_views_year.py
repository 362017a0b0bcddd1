"""Benchmark part: the long MES views over a year, built as 12 back-to-back copies of ``bench.mes_views``' month.

A year of the demo plant from the model itself would take ~12x the month's generation (8-45 min on the
shared box), so the year is the month's time-view tables copied 11 times, 30 days apart (ids of
orders and shifts suffixed, so each copy is its own orders and shifts): 1.9M states, 1.1M counts.
Its facts are built as the adapter builds them (a week per writer call), then each view runs as in
``bench.mes_views.time_view``: old = facts read from DuckDB alone (no memo: the step before this
one), new = facts through the views' memo, as the adapter serves them. ``--year FILE`` of
``bench.mes_views`` runs it.
"""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

from bench.mes_views import START, _label, build_facts, load, time_view
from uns.store.database import Database

__all__ = ["time_year", "year_from_month"]

# the month again, shifted by k * 30 days (ids of orders and shifts suffixed): the tables the time views read
_SHIFTED = {
    "mes_states": "",
    "mes_counts": ", order_id || '~{k}' AS order_id",
    "mes_reasons": ", start_ts + INTERVAL ({d}) DAY AS start_ts, end_ts + INTERVAL ({d}) DAY AS end_ts",
    "mes_work_orders": ", order_id || '~{k}' AS order_id",
    "mes_shifts": """, shift_id || '~{k}' AS shift_id, start_ts + INTERVAL ({d}) DAY AS start_ts,
        end_ts + INTERVAL ({d}) DAY AS end_ts, to_json(list_transform(
            from_json(breaks, '[{{"start_ms": "BIGINT", "end_ms": "BIGINT", "name": "VARCHAR"}}]'),
            lambda x: struct_pack(start_ms := x.start_ms + {ms}, end_ms := x.end_ms + {ms},
                             name := x.name))) AS breaks""",
}


def year_from_month(month: Path, year: Path, copies: int) -> None:
    """``copies`` back-to-back copies of the month's time-view tables (30 days apart) in a new file."""
    shutil.copy2(month, year)
    with Database(path=year, memory_limit_mb=2048) as db:
        for k in range(1, copies):
            for table, more in _SHIFTED.items():
                replaced = more.format(k=k, d=30 * k, ms=30 * k * 86_400_000)
                db.connection.execute(
                    f"INSERT INTO {table} SELECT * REPLACE (hash(event_key, {k}) AS event_key,"  # noqa: S608 (ours)
                    f" ts + INTERVAL ({30 * k}) DAY AS ts, received + INTERVAL ({30 * k}) DAY AS received{replaced})"
                    f" FROM {table} WHERE ts < $end",
                    {"end": START + timedelta(days=30)},
                )
        db.connection.execute("CHECKPOINT")


def time_year(month: Path, year: Path, runs: int, *, reuse: bool = False) -> None:
    """The long views over 12 copies of the month (360 days): facts without the memo, then with it."""
    now = START + timedelta(days=360)
    if not (reuse and year.exists()):
        started = time.perf_counter()
        year_from_month(month, year, 12)
        print(f"\n== a year: 12 copies of the month in {time.perf_counter() - started:.0f} s")
    seconds, calls, hours = build_facts(year, now)
    print(f"== a year: facts built in {seconds:.1f} s ({calls} calls, {hours} hours per path); ms first / median"
          f" of {runs}; old = facts alone, new = facts through the memo; load = 1-min load average")  # fmt: skip
    site, line = "acme/dallas", "acme/dallas/bottling/line1"
    start, end = START.isoformat(), now.isoformat()
    for view, params in [
        ("oee", {"path": [site], "start": [start], "end": [end], "by": ["line"]}),
        ("oee", {"path": [site], "start": [start], "end": [end], "by": ["cell"]}),
        ("oee", {"path": [line], "start": [start], "end": [end], "by": ["day"]}),
        ("downtime", {"path": [line], "start": [start], "end": [end]}),
        ("current", {}),
    ]:
        old, old_answer = time_view(year, view, params, now, runs, memo=False)
        new, answer = time_view(year, view, params, now, runs)
        print(f"  {view:<10} {_label(params):<44} {new.rows:>6} old {old.first * 1000:>7.0f} {old.median * 1000:>7.0f}"
              f"  new {new.first * 1000:>7.0f} {new.median * 1000:>7.0f}  same {answer == old_answer}"
              f"  load {load()}", flush=True)  # fmt: skip
