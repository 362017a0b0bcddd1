"""Where does the soak's memory go? ``uns up`` in this process under the soak's load, probed as it runs.

Every ``--every-s`` seconds it prints the RSS, DuckDB's own accounting (``duckdb_memory()`` and
``memory_limit``) and, with ``--trace``, the Python allocations that grew most since the warm-up
snapshot (tracemalloc slows the hub down: use it with ``--no-demo`` and a short run); with
``--trim``, how much glibc gives back on ``malloc_trim(0)`` (freed heap it kept). It finds
the historian's database by walking the heap, so nothing in the hub exists only for this probe.

    uv run python -m bench.soak_probe [--minutes 5] [--rate 3000] [--env UNS_HISTORIAN__MEMORY_LIMIT_MB=0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import multiprocessing
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import pyarrow as pa

from bench.hub_process import rss_mib
from bench.load import run_load
from hub.app import run_up
from uns.memory import heap_in_use
from uns.settings import load_plant, load_settings
from uns.store.database import Database

__all__ = ["main"]


def _database() -> Database | None:
    return next((o for o in gc.get_objects() if isinstance(o, Database) and o.path is not None), None)


def _duckdb_report(database: Database | None) -> str:
    if database is None:
        return "duckdb: not open"
    reader = database.reader()
    try:
        limit = reader.execute("SELECT current_setting('memory_limit')").fetchone()
        rows = reader.execute(
            "SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0"
        ).fetchall()
        # nodes of the buffer pool's eviction queues: each dead one keeps its freed block handle's memory
        queues = reader.execute(
            "SELECT queue_index, approximate_size, dead_nodes, total_insertions FROM duckdb_eviction_queues()"
            " WHERE approximate_size > 0"
        ).fetchall()
    finally:
        reader.close()
    parts = " ".join(f"{tag}={used / 2**20:.1f}" for tag, used, _ in rows)
    total = sum(used for _, used, _ in rows) / 2**20
    nodes = " ".join(f"q{index}={size:,}/{dead:,}/{added:,}" for index, size, dead, added in queues)
    return (
        f"duckdb: limit {limit[0] if limit else '?'}  used {total:.1f} MiB  [{parts}]\n"
        f"eviction queues (nodes/dead/inserted): {nodes}"
    )


async def _probe(args: argparse.Namespace, data_dir: Path) -> None:
    for item in args.env:
        key, value = item.split("=", 1)
        os.environ[key] = value
    overrides: dict[str, object] = {"broker.mqtt_port": 0, "broker.ws_port": 0, "web.http_port": 0}
    overrides |= {"data_dir": str(data_dir), "log_level": "WARNING", "demo": args.demo}
    settings = load_settings(config_file=None, overrides=overrides, environ=os.environ)
    plant = load_plant(settings.plant)
    ready = asyncio.Event()
    url: list[str] = []

    def on_ready(line: str) -> None:
        url.append(next(p.split("=", 1)[1] for p in line.split() if p.startswith("mqtt=")))
        ready.set()

    hub = asyncio.create_task(run_up(settings, plant, ready=on_ready), name="bench.probe.hub")
    await ready.wait()
    parent, child = multiprocessing.Pipe()
    load = multiprocessing.Process(
        target=run_load, args=(url[0], args.nodes, args.metrics, args.rate, args.minutes * 60.0, child), daemon=True
    )
    load.start()
    for item in args.set:  # DuckDB settings to try on the running historian, e.g. allocator_background_threads=true
        name, value = item.split("=", 1)
        database = _database()
        if database is not None:
            reader = database.reader()
            try:
                reader.execute(f"SET GLOBAL {name} = '{value}'")
            finally:
                reader.close()
    await asyncio.sleep(args.warmup_s)
    if args.trace:
        tracemalloc.start(args.frames)
    base = tracemalloc.take_snapshot() if args.trace else None
    start = time.monotonic()
    try:
        while load.is_alive():
            await asyncio.sleep(args.every_s)
            print(f"\n== {(time.monotonic() - start) / 60:.1f} min  RSS {rss_mib(os.getpid()):.1f} MiB", flush=True)
            print(_duckdb_report(_database()), flush=True)
            heap = heap_in_use()
            if heap is not None:
                print(f"glibc heap in use {heap / 2**20:.1f} MiB", flush=True)
            pool = pa.default_memory_pool()
            print(
                f"arrow {pool.backend_name}: allocated {pool.bytes_allocated() / 2**20:.1f} MiB"
                f" (peak {pool.max_memory() / 2**20:.1f});  gc objects {len(gc.get_objects()):,}",
                flush=True,
            )
            if args.trim:
                before = rss_mib(os.getpid())
                ctypes.CDLL("libc.so.6").malloc_trim(0)
                print(f"malloc_trim(0): RSS {before:.1f} -> {rss_mib(os.getpid()):.1f} MiB", flush=True)
            if base is None:
                continue
            snap = tracemalloc.take_snapshot()
            for stat in snap.compare_to(base, "traceback" if args.frames > 1 else "lineno")[: args.top]:
                print(
                    f"  {stat.size_diff / 2**20:+7.2f} MiB {stat.count_diff:+8d}  {stat.traceback.format()[-1].strip()}"
                )
    finally:
        tracemalloc.stop()
        hub.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hub
        parent.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=3_000.0)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--warmup-s", type=float, default=30.0, help="load before the baseline snapshot")
    parser.add_argument("--every-s", type=float, default=60.0)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--frames", type=int, default=1)
    parser.add_argument("--trace", action="store_true", help="tracemalloc diffs (slow: use with --no-demo)")
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE: a DuckDB setting to try")
    parser.add_argument("--trim", action="store_true", help="call glibc malloc_trim(0) after each report")
    parser.add_argument("--no-demo", dest="demo", action="store_false")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE set before the settings load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="uns-probe-") as tmp:
        asyncio.run(_probe(args, Path(tmp)))


if __name__ == "__main__":
    main()
