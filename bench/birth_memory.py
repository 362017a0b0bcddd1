"""Benchmark: memory a Sparkplug birth costs the host, per metric, and where it goes (tracemalloc).

One DBIRTH of N Double metrics (with aliases and a unit-free name ``Group<k>/Metric<i>``) goes
through ``HostCore.handle`` with tracemalloc on. Prints the wire bytes per metric, the memory the
host keeps per metric after the birth (its tables: slots, last envelopes, aliases), the peak while
handling it (the republished messages included) and the top allocation sites of what is kept. The
baseline in the same run is the same birth's wire size: kept/wire is the ratio to watch.

    uv run python -m bench.birth_memory [--metrics 40000] [--top 8]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

from model.equipment import Plant
from uns.host.bounds import HostBounds
from uns.host.core import HostCore
from uns.sparkplug import DataType, Metric, Payload, encode_payload

__all__ = ["main"]

_GROUP, _NODE, _DEVICE = "bench", "edge1", "press"


def _plant() -> Plant:
    tree = {"id": "acme", "sites": [{"id": "dallas", "areas": [{"id": "pkg", "lines": [{"id": "line1"}]}]}]}
    return Plant.model_validate(
        {"enterprise": tree, "bindings": [{"group": _GROUP, "node": _NODE, "path": "acme/dallas/pkg/line1"}]}
    )


def _birth(kind: str, metrics: int, now_ms: int, *, seq: int) -> tuple[str, bytes]:
    items = [Metric(name="bdSeq", datatype=DataType.Int64, value=0)] if kind == "NBIRTH" else []
    items += [
        Metric(
            name=f"Group{i // 100}/Metric{i}", alias=i + 1, timestamp=now_ms, datatype=DataType.Double, value=i * 0.5
        )
        for i in range(metrics)
    ]
    device = f"/{_DEVICE}" if kind == "DBIRTH" else ""
    return f"spBv1.0/{_GROUP}/{kind}/{_NODE}{device}", encode_payload(Payload(timestamp=now_ms, seq=seq, metrics=items))


def main() -> None:
    """Run one birth of ``--metrics`` metrics and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metrics", type=int, default=40_000)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    now_ms = time.time_ns() // 1_000_000
    core = HostCore(
        plant=_plant(), max_payload_bytes=64 << 20, bounds=HostBounds(max_metrics_per_birth=max(args.metrics, 10_000))
    )
    topic, nbirth = _birth("NBIRTH", 0, now_ms, seq=0)
    core.handle(topic, nbirth, now_ms)
    topic, dbirth = _birth("DBIRTH", args.metrics, now_ms, seq=1)
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    out = core.handle(topic, dbirth, now_ms)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    del out
    gc.collect()
    kept, _ = tracemalloc.get_traced_memory()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    n = args.metrics
    wire = len(dbirth) / n
    kept_per = (kept - base) / n
    print(f"birth: {n} metrics, {len(dbirth):,} bytes on the wire ({wire:.1f} B/metric), handled in {elapsed:.2f} s")
    print(f"kept by the host: {kept - base:,} bytes = {kept_per:.0f} B/metric (kept/wire {kept_per / wire:.1f}x)")
    print(f"peak while handling (republished messages included): {(peak - base) / n:.0f} B/metric")
    print(f"series tracked: {core.health()['series']}")
    print("where the kept memory goes (top allocation sites):")
    for stat in after.compare_to(before, "lineno")[: args.top]:
        frame = stat.traceback[0]
        print(f"  {stat.size_diff / n:7.0f} B/metric  {frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}")


if __name__ == "__main__":
    main()
