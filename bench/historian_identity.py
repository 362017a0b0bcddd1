"""Benchmark: what the sample identity (series, ts, value, quality) costs ``Store.commit``, against the old store.

The baseline is the store as it was before the identity changed (``(series, ts)``: one value per
series per millisecond), read from git (``--baseline-rev``) and run in the same process, on the
same rows, on a database of the current schema (its Arrow inserts name their columns, so ``seq``
takes its default). Three workloads, 1,000 series, batches of 10k rows:

- ``live``: distinct, increasing timestamps per series (the fast path: no lookup)
- ``burst``: 10 different values per series per millisecond (a receive-time-stamped burst); the old
  store keeps one of each 10 and counts the rest as duplicates
- ``burst-split``: the same, but every batch begins inside a millisecond the previous one ended in,
  so 9 of its 10 values per series are looked up in the table (the worst case of a burst)
- ``redelivery``: the live rows committed a second time (every row looked up, every row a duplicate)

    uv run python -m bench.historian_identity [--rows 200000] [--runs 3] [--baseline-rev 533f6bf]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import duckdb
import orjson

from uns.historian.rows import RowParser, SampleRow
from uns.historian.store import Batch, Store
from uns.store.database import Database

__all__ = ["main"]


class _Committer(Protocol):
    def commit(self, batch: Batch, /) -> object: ...


_Make = Callable[[duckdb.DuckDBPyConnection], _Committer]
_SERIES = 1_000
_BATCH = 10_000
_ROOT = Path(__file__).resolve().parent.parent


def _old_store(rev: str) -> types.ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:uns/historian/store.py"], cwd=_ROOT, capture_output=True, check=True, text=True
    ).stdout
    spec = importlib.util.spec_from_loader("bench_old_store", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_old_store"] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:uns/historian/store.py", "exec"), module.__dict__)  # noqa: S102  (our own file)
    return module


def _rows(count: int, per_ms: int, start_ms: int, *, split: bool = False) -> list[SampleRow]:
    """``count`` rows, ``per_ms`` different values per series per ms; batches hold whole ms unless ``split``."""
    parser = RowParser(max_future_ms=300_000)
    topics = [f"acme/s/a/l/c{n // 100}/data/m{n % 100}" for n in range(_SERIES)]
    out: list[SampleRow] = []
    for i in range(count):
        series, step = i % _SERIES, i // _SERIES
        ms = step // per_ms if split else (step + per_ms - 1) // per_ms  # the first batch only registers
        body = {"value": float(step), "timestamp_ms": start_ms + ms, "datatype": "Double"}
        row = parser.parse(topics[series], orjson.dumps(body), now_ms=start_ms + 10**9)
        assert isinstance(row, SampleRow)
        out.append(row)
    return out


def _batches(rows: list[SampleRow]) -> list[Batch]:
    return [
        Batch(samples=rows[k : k + _BATCH], received_ms=[0] * len(rows[k : k + _BATCH]))
        for k in range(0, len(rows), _BATCH)
    ]


def _run(make: _Make, rows: list[SampleRow], tmp: Path, name: str, *, twice: bool) -> tuple[float, int]:
    """Rows/s of committing ``rows`` (the second commit when ``twice``), and rows stored."""
    path = tmp / f"{name}-{time.monotonic_ns()}.duckdb"
    with Database(path=path) as db:
        store = make(db.connection)
        store.commit(Batch(samples=rows[:_SERIES], received_ms=[0] * _SERIES))  # registers the series
        batches = _batches(rows[_SERIES:])
        if twice:
            for batch in batches:
                store.commit(batch)
        started = time.perf_counter()
        for batch in batches:
            store.commit(batch)
        seconds = time.perf_counter() - started
        found = db.connection.execute("SELECT count(*) FROM samples").fetchone()
        stored = int(found[0]) if found else 0
    return (len(rows) - _SERIES) / seconds, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows per workload")
    parser.add_argument("--runs", type=int, default=3, help="runs per workload and store (median reported)")
    parser.add_argument("--baseline-rev", default="533f6bf", help="git revision of the baseline store.py")
    args = parser.parse_args()
    old = _old_store(args.baseline_rev)
    stores: dict[str, _Make] = {"old": old.Store, "new": Store}
    start_ms = 1_764_000_000_000
    workloads = {
        "live": (_rows(args.rows, 1, start_ms), False),
        "burst": (_rows(args.rows, 10, start_ms), False),
        "burst-split": (_rows(args.rows, 10, start_ms, split=True), False),
        "redelivery": (_rows(args.rows, 1, start_ms), True),
    }
    print(f"Store.commit, {_SERIES} series, batches of {_BATCH}, {args.rows} rows, median of {args.runs}")
    print(f"{'workload':<12}{'old rows/s':>12}{'new rows/s':>12}{'new/old':>9}{'old stored':>12}{'new stored':>12}")
    with tempfile.TemporaryDirectory(prefix="uns-bench-identity-") as name:
        tmp = Path(name)
        for workload, (rows, twice) in workloads.items():
            rates: dict[str, list[float]] = {"old": [], "new": []}
            stored: dict[str, int] = {}
            for _ in range(args.runs):
                for label, make in stores.items():  # interleaved, so both see the same machine load
                    rate, stored[label] = _run(make, rows, tmp, label, twice=twice)
                    rates[label].append(rate)
            o, n = statistics.median(rates["old"]), statistics.median(rates["new"])
            print(f"{workload:<12}{o:>12.0f}{n:>12.0f}{n / o:>9.2f}{stored['old']:>12}{stored['new']:>12}")


if __name__ == "__main__":
    main()
