"""Benchmark: the MES adapter's KPI tick (``current``) through the hour, at the demo plant's count rate.

Every ``kpi_interval_s`` the adapter computes ``current``: each cell's and line's state, order and OEE over the
running shift. The shift's closed hours come from the per-hour facts (through the views' memo), the open hour from
the counts themselves, so its cost grows with the minutes gone in the hour: the demo stores ~5 counts a second,
~17k by the hour's end. The file: 12 cells counting one unit every 2.5 s each while running, a 2-minute stop
every 20 minutes, one shift per line from 6 h before the open hour, an order per line (its product's ideal
cycle time), the facts of the closed hours built. Each figure is ``current``'s CPU (``time.process_time``:
DuckDB's threads too) and wall time at ``--minutes`` into the open hour, the median of ``--repeats`` after one
warm-up, in a process of its own with the memo attached as the adapter attaches it.

``--before REV`` runs the same with the modules of commit REV (``git archive``; each tree writes the file with its
own code, as an older tree refuses a newer schema), turn about with this tree,
``--runs`` times each, and prints the ratio of the medians. The 1-minute load is printed beside each figure.

    uv run python -m bench.mes_kpi_tick [--before REV] [--runs 3] [--minutes 1,15,30,55] [--repeats 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

__all__ = ["generate", "main", "measure"]

HOUR0 = datetime(2026, 11, 2, 12, tzinfo=UTC)
"""The open hour's start."""
_CELLS = 12
_COUNT_S = 2.5
_HOURS_BEFORE = 8


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _event(path: str, event: str, moment: datetime, **body: object) -> tuple[str, bytes]:
    return f"{path}/mes/{event}", orjson.dumps({"timestamp_ms": _ms(moment), **body})


def generate(path: Path) -> int:
    """Write the file (see the module's doc); returns the events stored."""
    from bench.mes_views import Stored, mes_section, store
    from uns.mes import facts
    from uns.mes.store import MesStore
    from uns.store.database import Database

    lines = [f"acme/dallas/bench/line{k}" for k in range(_CELLS // 4)]
    short = {line: line.rsplit("/", 1)[1] for line in lines}
    cells = [f"{line}/cell{c}" for line in lines for c in range(4)]
    begin = HOUR0 - timedelta(hours=_HOURS_BEFORE)
    end = HOUR0 + timedelta(hours=1)
    events = [_event("acme/dallas", "product_type", begin, product_id="p1", ideal_cycle_time_s=2.0)]
    for line in lines:
        events += [
            _event(line, "shift", begin, shift_id=f"{short[line]}-s1", start_ms=_ms(HOUR0 - timedelta(hours=6)),
                   end_ms=_ms(HOUR0 + timedelta(hours=2))),
            _event(line, "work_order", begin, order_id=f"{short[line]}-o1", action="release", product_id="p1",
                   quantity=10**6),
            _event(line, "work_order", begin, order_id=f"{short[line]}-o1", action="start"),
        ]  # fmt: skip
    for index, cell in enumerate(cells):
        moment, state = begin + timedelta(seconds=_COUNT_S * index / _CELLS), 0
        while moment < end:
            now_state = 40000 if int((moment - begin).total_seconds() // 60) % 20 < 2 else 10000
            if now_state != state:  # by exception, as the edge nodes send it
                events.append(_event(cell, "machine_state", moment, state=now_state))
                state = now_state
            if state == 10000:
                events.append(_event(cell, "production_count", moment, total=1))
            moment += timedelta(seconds=_COUNT_S)
    tally = Stored()
    with Database(path=path) as db:
        mes = MesStore(db.connection, mes_section())
        store(mes, events, tally)
        builder = facts.FactBuilder(db.connection, mes_section())
        while builder.build(HOUR0):
            pass
        db.connection.execute("CHECKPOINT")
    return sum(tally.counts.values())


def measure(path: Path, minutes: list[int], repeats: int) -> dict[str, tuple[float, float]]:
    """Minute -> (CPU ms, wall ms) of ``current`` at that minute into the open hour, memo attached."""
    from bench.mes_views import mes_section
    from uns.mes import memo
    from uns.mes.downtime import current
    from uns.store.database import Database

    section = mes_section()
    out: dict[str, tuple[float, float]] = {}
    with Database(path=path) as db, contextlib.closing(db.reader()) as cursor:
        detach = memo.attach(cursor, memo.ViewMemo())
        try:
            for minute in minutes:
                now = HOUR0 + timedelta(minutes=minute)
                rows = current(cursor, section, now=now, output_cells=section.output_cells)  # warm: the memo loads
                if len(rows) != _CELLS + _CELLS // 4:
                    raise SystemExit(f"bench bug: {len(rows)} rows of current")
                cpu, wall = [], []
                for _ in range(repeats):
                    c0, w0 = time.process_time(), time.perf_counter()
                    current(cursor, section, now=now, output_cells=section.output_cells)
                    cpu.append(time.process_time() - c0)
                    wall.append(time.perf_counter() - w0)
                out[str(minute)] = (1000 * statistics.median(cpu), 1000 * statistics.median(wall))
        finally:
            detach()
    return out


def _child(args: argparse.Namespace) -> None:
    path = Path(args.child)
    if not path.exists():  # each tree writes its own file: an older tree refuses a newer one's schema
        started = time.perf_counter()
        stored = generate(path)
        took = time.perf_counter() - started
        print(f"generated {stored:,} events ({_CELLS} cells, a count every {_COUNT_S} s each, "
              f"{_HOURS_BEFORE} h before the open hour) in {took:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
    minutes = [int(m) for m in args.minutes.split(",")]
    print(json.dumps(measure(path, minutes, args.repeats)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="also measure the modules of this commit, turn about with this tree")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minutes", default="1,15,30,55")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    from bench.hub_process import compared_trees, run_child, turn_about  # the parent's only

    with tempfile.TemporaryDirectory(prefix="uns-bench-kpi-") as tmp:
        figures: dict[str, list[dict[str, tuple[float, float]]]] = {}
        with compared_trees(args.before) as trees:
            # the same plant in a file per tree, written by that tree's own code (its first child's run)
            files = {tree: Path(tmp) / f"mes-{index}.duckdb" for index, (tree, _) in enumerate(trees)}
            for tree, source in turn_about(trees, args.runs):
                argv = ["--child", str(files[tree]), "--minutes", args.minutes, "--repeats", str(args.repeats)]
                found = run_child(__file__, source, argv)
                figures.setdefault(tree, []).append(found)
                shown = ", ".join(f"min {m}: {cpu:.1f} ms CPU / {wall:.1f} ms" for m, (cpu, wall) in found.items())
                print(f"{tree}: {shown} (load {os.getloadavg()[0]:.1f})", flush=True)
    medians = {
        tree: {m: statistics.median(run[m][0] for run in runs) for m in runs[0]} for tree, runs in figures.items()
    }
    for tree, by_minute in medians.items():
        print(f"median {tree}: " + ", ".join(f"min {m}: {cpu:.1f} ms CPU" for m, cpu in by_minute.items()))
    if len(medians) == 2:
        (_, old), (_, new) = medians.items()
        print("ratio now/before: " + ", ".join(f"min {m}: {new[m] / old[m]:.2f}x" for m in new))


if __name__ == "__main__":
    main()
