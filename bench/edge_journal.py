"""The edge node's replay journal per recorded batch, at the idle demo's rate and faster (issue 16 point 6).

`uv run python -m bench.edge_journal [--before REV] [--runs 3] [--minutes 10]`

``Journal.record`` with the default 10 s window and 64 MiB cap on a real directory, a fake clock (the journal takes
``now_ms`` as an argument) so simulated minutes take no wall time: one batch of two Double metrics with their
``Quality`` property (what the edge session accepts from a reading) every ``--gap`` ms, for each gap of the cases
below. Per case: the thread's CPU per record (``time.thread_time``: user and kernel, so the segment files' creation
and deletion count; the least of 5 in each child), and the segment files created per simulated minute.

The cases: one batch a second per node (the idle demo: ~14 edge nodes, each about that), one every 4 s (a quiet
node), 10 a second, and 1000 a second (a busy node). ``--before REV`` runs the same with the modules of commit REV
(``git archive``) in a child process, turn about with this tree, and prints the ratio of the medians. The box is
shared: the 1-minute load is printed beside each figure.

Syscalls per record: ``strace -f -c python -m bench.edge_journal --child --gap 1000`` against the same with
``--minutes 0`` (the interpreter's start alone).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bridges.edge.buffer import BufferedBatch
from bridges.edge.journal import Journal
from uns.sparkplug import DataType, Metric, PropertySet, PropertyValue

_GAPS_MS = (1000, 4000, 100, 1)
_MAX_RECORDS = 30_000
"""A case's simulated minutes are cut to this many records (1000 a second: 30 s, three windows)."""
_T0 = 1_700_000_000_000
_QUALITY = PropertySet({"Quality": PropertyValue(type=DataType.Int32, value=192)})


def _batch(index: int, now_ms: int) -> BufferedBatch:
    metrics = tuple(
        Metric(
            name=f"Line/Tag{k}", timestamp=now_ms, datatype=DataType.Double, value=index * 0.5 + k, properties=_QUALITY
        )
        for k in range(2)
    )
    return BufferedBatch("press", metrics)


def _files_created(directory: Path) -> int:
    """Segments numbered from 1 in a fresh directory and the newest never deleted: its number is the count."""
    return max((int(path.stem.removeprefix("jrn-")) for path in directory.glob("jrn-*")), default=0)


def record_us(gap_ms: int, minutes: float) -> tuple[float, float]:
    """(thread CPU per record in us, segment files created per simulated minute) for one batch every ``gap_ms``."""
    minutes = min(minutes, _MAX_RECORDS * gap_ms / 60_000)
    count = round(minutes * 60_000 / gap_ms)
    times = [_T0 + i * gap_ms for i in range(count)]
    batches = [_batch(i, now) for i, now in enumerate(times)]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "journal"
        with Journal(directory=directory, window_ms=10_000, max_bytes=64 * 1024 * 1024, name="bench") as journal:
            started = time.thread_time()
            for batch, now in zip(batches, times, strict=True):
                journal.record(batch, now_ms=now)
            spent = time.thread_time() - started
            files = _files_created(directory)
    return spent / max(count, 1) * 1e6, files / minutes if minutes else 0.0


def _child(source: Path | None, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    from bench.hub_process import run_child  # the parent's only

    figures: dict[str, tuple[float, float]] = run_child(__file__, source, ["--child", "--minutes", str(args.minutes)])
    return figures


def _run_child(args: argparse.Namespace) -> None:
    gaps = (args.gap,) if args.gap is not None else _GAPS_MS
    figures = {}
    for gap in gaps:
        # the least disturbed of several: on the shared box a neighbour's burst only ever adds
        runs = [record_us(gap, args.minutes) for _ in range(5 if args.gap is None else 1)]
        figures[str(gap)] = (min(us for us, _ in runs), runs[0][1])
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="also measure the modules of this commit, turn about with this tree")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=10.0, help="simulated minutes per case (at most 30k records)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gap", type=int, help=argparse.SUPPRESS)  # one case, once: for strace
    args = parser.parse_args()
    if args.child:
        _run_child(args)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.hub_process import compared_trees, turn_about  # the parent's only

    figures: dict[str, list[dict[str, tuple[float, float]]]] = {}
    with compared_trees(args.before) as trees:
        for tree, source in turn_about(trees, args.runs):
            got = _child(source, args)
            figures.setdefault(tree, []).append(got)
            cases = ", ".join(
                f"every {gap} ms {us:.1f} us/record {files:.0f} files/min" for gap, (us, files) in got.items()
            )
            print(f"{tree}: {cases} (load {os.getloadavg()[0]:.1f})", flush=True)
    medians = {
        tree: {gap: statistics.median(run[gap][0] for run in runs) for gap in runs[0]} for tree, runs in figures.items()
    }
    for tree, by_gap in medians.items():
        print(f"{tree}: median " + ", ".join(f"every {gap} ms {us:.1f} us/record" for gap, us in by_gap.items()))
    if args.before is not None:
        old, new = medians[trees[0][0]], medians["now"]
        print("now / before: " + ", ".join(f"every {gap} ms {new[gap] / old[gap]:.2f}x" for gap in new))


if __name__ == "__main__":
    main()
