"""Benchmark: memory a Sparkplug birth costs the host, per metric, and where it goes (tracemalloc).

One DBIRTH of N Double metrics (with aliases and a unit-free name ``Group<k>/Metric<i>``) goes
through ``HostCore.handle`` with tracemalloc on. Prints the wire bytes per metric, the memory the
host keeps per metric after the birth (its tables: slots, last envelopes, aliases), the peak while
handling it (the republished messages included) and the top allocation sites of what is kept, then
the time to handle the same birth without tracemalloc. Baselines in the same run: the birth's wire
size (kept/wire is the ratio to watch) and the memory a republished envelope holds as orjson returns
it against the compact copy the host publishes (``uns.host.republish.compact_json``).

    uv run python -m bench.birth_memory [--metrics 40000] [--top 8]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc

import orjson

from model.envelope import EnvelopeDict
from model.equipment import Plant
from uns.clock import now_ms
from uns.host.bounds import HostBounds
from uns.host.core import HostCore
from uns.host.republish import compact_json
from uns.sparkplug import DataType, Metric, Payload, encode_payload
from uns.sparkplug.node_control import BD_SEQ

__all__ = ["main"]

_GROUP, _NODE, _DEVICE = "bench", "edge1", "press"


def _plant() -> Plant:
    tree = {"id": "acme", "sites": [{"id": "dallas", "areas": [{"id": "pkg", "lines": [{"id": "line1"}]}]}]}
    return Plant.model_validate(
        {"enterprise": tree, "bindings": [{"group": _GROUP, "node": _NODE, "path": "acme/dallas/pkg/line1"}]}
    )


def _birth(kind: str, metrics: int, now_ms: int, *, seq: int) -> tuple[str, bytes]:
    items = [Metric(name=BD_SEQ, datatype=DataType.Int64, value=0)] if kind == "NBIRTH" else []
    items += [
        Metric(
            name=f"Group{i // 100}/Metric{i}", alias=i + 1, timestamp=now_ms, datatype=DataType.Double, value=i * 0.5
        )
        for i in range(metrics)
    ]
    device = f"/{_DEVICE}" if kind == "DBIRTH" else ""
    return f"spBv1.0/{_GROUP}/{kind}/{_NODE}{device}", encode_payload(Payload(timestamp=now_ms, seq=seq, metrics=items))


def _held(dumps: object, env: EnvelopeDict, n: int = 20_000) -> float:
    """Bytes one serialised envelope keeps allocated, over ``n`` of them kept alive."""
    tracemalloc.start(1)
    base, _ = tracemalloc.get_traced_memory()
    kept = [dumps(env) for _ in range(n)]  # type: ignore[operator]
    used, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    return (used - base) / n


def _timed(plant: Plant, bounds: HostBounds, births: list[tuple[str, bytes]], now_ms: int) -> float:
    runs = []
    for _ in range(3):
        core = HostCore(plant=plant, max_payload_bytes=64 << 20, bounds=bounds)
        started = time.perf_counter()
        for topic, body in births:
            core.handle(topic, body, now_ms)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    """Run one birth of ``--metrics`` metrics and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metrics", type=int, default=40_000)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    start_ms = now_ms()
    bounds = HostBounds(max_metrics_per_birth=max(args.metrics, 10_000))
    core = HostCore(plant=_plant(), max_payload_bytes=64 << 20, bounds=bounds)
    nb_topic, nbirth = _birth("NBIRTH", 0, start_ms, seq=0)
    core.handle(nb_topic, nbirth, start_ms)
    topic, dbirth = _birth("DBIRTH", args.metrics, start_ms, seq=1)
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    out = core.handle(topic, dbirth, start_ms)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    out_sample = next(m.payload for m in out if "/data/Group" in m.topic)
    del out
    gc.collect()
    kept, _ = tracemalloc.get_traced_memory()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    n = args.metrics
    wire = len(dbirth) / n
    kept_per = (kept - base) / n
    print(f"birth: {n} metrics, {len(dbirth):,} bytes on the wire ({wire:.1f} B/metric)")
    print(f"kept by the host: {kept - base:,} bytes = {kept_per:.0f} B/metric (kept/wire {kept_per / wire:.1f}x)")
    print(f"peak while handling (republished messages included): {(peak - base) / n:.0f} B/metric")
    print(f"series tracked: {core.health()['series']}")
    print("where the kept memory goes (top allocation sites):")
    for stat in after.compare_to(before, "lineno")[: args.top]:
        frame = stat.traceback[0]
        print(f"  {stat.size_diff / n:7.0f} B/metric  {frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}")
    env = orjson.loads(out_sample)
    raw, compact = _held(orjson.dumps, env), _held(compact_json, env)
    print(
        f"one republished envelope ({len(out_sample)} B) holds: orjson.dumps {raw:.0f} B, compact {compact:.0f} B",
        end="",
    )
    print(f" (ratio {raw / compact:.1f}x)")
    refused = HostCore(plant=_plant(), max_payload_bytes=64 << 20)  # the default bounds: 10k metrics a birth
    refused.handle(nb_topic, nbirth, start_ms)
    gc.collect()
    tracemalloc.start(1)
    base, _ = tracemalloc.get_traced_memory()
    refused.handle(topic, dbirth, start_ms)
    gc.collect()
    kept_refused, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    health = refused.health()
    print(
        f"with the default bounds the birth is refused: kept {kept_refused - base:,} bytes,"
        f" series {health['series']}, rejected {health['rejected']}"
    )
    seconds = _timed(_plant(), bounds, [(nb_topic, nbirth), (topic, dbirth)], start_ms)
    print(
        f"handling time without tracemalloc: {seconds:.2f} s ({seconds / n * 1e6:.1f} us/metric;"
        f" traced: {elapsed:.2f} s)"
    )


if __name__ == "__main__":
    main()
