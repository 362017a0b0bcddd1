"""Benchmark: how long ``uns up`` takes to its ready line, and its memory then, with and without the demo.

The hub runs as users run it (its own process, ports 0, a temporary data dir); the time is from the process's
launch to its ``uns-hub ready`` line, the CPU its user + system seconds then (``/proc/<pid>/stat``), the memory
its RSS then. ``--before REV`` runs the hub of that commit too (``git archive``), turn about with this tree
(or with ``--after REV``'s), ``--runs`` times each, and prints the ratio of the medians: a baseline from the
same run on the same box.

Every tree starts with its bytecode cached, as an installed hub does: the hubs read and write it under one
temporary prefix (``tests.fixtures.bytecode``, also where PYTHONDONTWRITEBYTECODE is set), after one start of
each tree that is not counted. Otherwise a tree from ``git archive`` compiles every module at every start
(0.4-0.8 s of CPU for ``uns up --no-demo``) where this tree reads its ``__pycache__``, and the ratio counts that.

    uv run python -m bench.hub_start [--runs 4] [--before HEAD~1 [--after HEAD]] [--demo both|on|off]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.hub_idle import cpu_seconds
from bench.hub_process import Tree, compared_trees, hub_process, rss_mib, turn_about
from tests.fixtures.bytecode import cache_bytecode

__all__ = ["Start", "main", "measure"]


@dataclass(frozen=True)
class Start:
    """One start of ``uns up``: seconds to the ready line, CPU seconds by then, RSS then (MiB)."""

    ready_s: float
    cpu_s: float
    rss_mib: float


def measure(source: Path | None, *, demo: bool) -> Start:
    """One start of the hub of ``source`` (None: this tree), stopped once it is ready."""
    with tempfile.TemporaryDirectory(prefix="uns-bench-start-") as data:
        launched = time.perf_counter()
        with hub_process(Path(data), demo=demo, source=source) as hub:
            ready_s = time.perf_counter() - launched
            return Start(ready_s, cpu_seconds(hub.pid), rss_mib(hub.pid))


def _line(label: str, starts: list[Start]) -> str:
    ready = [s.ready_s for s in starts]
    cpu = statistics.median(s.cpu_s for s in starts)
    rss = statistics.median(s.rss_mib for s in starts)
    spread = f"[{min(ready):.2f}-{max(ready):.2f}]"
    return f"{label}: ready {statistics.median(ready):.2f} s {spread}, CPU {cpu:.2f} s, RSS {rss:.0f} MiB"


def _compare(trees: list[Tree], runs: int, demo: bool) -> None:
    found: dict[str, list[Start]] = {label: [] for label, _ in trees}
    for label, source in turn_about(trees, runs):
        found[label].append(measure(source, demo=demo))
    what = "uns up" if demo else "uns up --no-demo"
    for label, starts in found.items():
        print(f"{what}, {_line(label, starts)}", flush=True)
    if len(trees) == 2:
        (before, _), (now, _) = trees
        old, new = found[before], found[now]
        ready = statistics.median(s.ready_s for s in new) / statistics.median(s.ready_s for s in old)
        rss = statistics.median(s.rss_mib for s in new) / statistics.median(s.rss_mib for s in old)
        print(f"{what}: {now} / {before}: ready {ready:.2f}x, RSS {rss:.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="starts of each tree (default 4)")
    parser.add_argument("--before", help="also run the hub of this commit, turn about (a baseline)")
    parser.add_argument("--after", help="run the hub of this commit as 'now' instead of this working tree")
    parser.add_argument("--demo", choices=("both", "on", "off"), default="both")
    args = parser.parse_args()
    print(f"load {os.getloadavg()[0]:.1f}", flush=True)
    with compared_trees(args.before, args.after) as trees, tempfile.TemporaryDirectory(prefix="uns-bench-pyc-") as pyc:
        cache_bytecode(Path(pyc))
        for _, source in trees:  # compiles and caches what each tree's hub imports (the demo's too): not counted
            measure(source, demo=args.demo != "off")
        for demo in (False, True):
            if args.demo == "both" or (args.demo == "on") == demo:
                _compare(trees, args.runs, demo)
    print(f"load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
