"""Benchmark: what maintenance work orders cost the MES: storing their versions, planned windows in OEE, reliability.

``--lines`` lines of 3 cells with ``--days`` of machine states (a change every 2-12 minutes, some of
them equipment failures), stored through the real ``MesStore`` into DuckDB files in a temp dir. For
each failure a corrective order (opened, started, closed: 3 versions) and per cell and day two
planned orders with a scheduled and an actual window. In the same process:

1. Storing: maintenance order versions/s against machine states/s (the baseline), same batches.
2. OEE by cell over the whole range, computed directly (no per-hour facts): the file with the
   orders against an identical file without any (the baseline), so the planned-window join's cost shows.
3. The reliability view (MTBF/MTTR, which reads OEE and the failure pieces) and the fault Pareto
   against the OEE view on the same file.

    uv run python -m bench.mes_maintenance [--days 3] [--lines 2]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

from model.config import MesSection
from model.mes import EVENT_MODELS
from uns.mes import facts
from uns.mes.maintenance_reliability import reliability
from uns.mes.maintenance_views import fault_pareto
from uns.mes.oee import oee
from uns.mes.store import Incoming, MesStore
from uns.store.database import Database

__all__ = ["main"]

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
DAY_MS = 86_400_000
BATCH = 2_000
_CODES = (10000, 10000, 10000, 10000, 40000, 60000, 180000)


def _item(path: str, event: str, body: dict[str, object]) -> Incoming:
    raw = orjson.dumps(body)
    model = EVENT_MODELS[event].model_validate_json(raw)
    return Incoming(topic=f"{path}/mes/{event}", path=path, event=event, body=model, received_ms=T0, raw=raw)


def _history(lines: int, days: int) -> tuple[list[Incoming], list[Incoming]]:
    """States of every cell, and the maintenance order versions that go with them."""
    rng = random.Random(5)
    states: list[Incoming] = []
    orders: list[Incoming] = []
    cells = [
        f"acme/dallas/bottling/line{n}/{cell}" for n in range(1, lines + 1) for cell in ("filler", "capper", "labeler")
    ]
    for path in cells:
        at, count = T0, 0
        while at < T0 + days * DAY_MS:
            code = rng.choice(_CODES)
            states.append(_item(path, "machine_state", {"timestamp_ms": at, "state": code}))
            step = rng.randrange(120_000, 720_000)
            if code == 180000:
                count += 1
                mid = f"C-{path.rsplit('/', 2)[-2]}-{path.rsplit('/', 1)[-1]}-{count}"
                opened, started, closed = at, at + step // 4, at + step
                for version, (status, when) in enumerate(
                    (("opened", opened), ("started", started), ("closed", closed))
                ):
                    body = {"timestamp_ms": when, "event_id": f"{mid}:{version}", "maintenance_id": mid,
                            "status": status, "fault_code": f"E-{rng.randrange(8)}", "opened_ms": opened}  # fmt: skip
                    orders.append(_item(path, "maintenance_order", body))
            at += step
        for day in range(days):
            for index, hour in enumerate((4, 16)):
                start = T0 + day * DAY_MS + hour * 3_600_000
                mid = f"P-{path.rsplit('/', 2)[-2]}-{path.rsplit('/', 1)[-1]}-{day}-{index}"
                body = {"timestamp_ms": start + 3_600_000, "event_id": mid, "maintenance_id": mid, "status": "closed",
                        "planned": True, "planned_start_ms": start, "planned_end_ms": start + 1_800_000,
                        "started_ms": start + 300_000, "closed_ms": start + 2_400_000}  # fmt: skip
                orders.append(_item(path, "maintenance_order", body))
    return states, orders


def _store(path: Path, items: list[Incoming]) -> float:
    """Items/s stored through one MesStore in batches."""
    with Database(path=path) as database:
        store = MesStore(database.connection, MesSection())
        began = time.perf_counter()
        for index in range(0, len(items), BATCH):
            store.apply(items[index : index + BATCH])
        return len(items) / (time.perf_counter() - began)


def _median_s(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _interleaved(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Medians of two works timed turn about, so a loaded box's swings hit both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for work, found in ((first, times[0]), (second, times[1])):
            began = time.perf_counter()
            work()
            found.append(time.perf_counter() - began)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    """Print the figures and their ratios to the baselines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--lines", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    states, orders = _history(args.lines, args.days)
    section = MesSection()
    start = datetime.fromtimestamp(T0 / 1000, UTC)
    end = datetime.fromtimestamp((T0 + args.days * DAY_MS) / 1000, UTC)
    with tempfile.TemporaryDirectory() as tmp:
        plain, with_orders = Path(tmp) / "plain.duckdb", Path(tmp) / "orders.duckdb"
        state_rate = _store(plain, states)
        _store(with_orders, states)
        order_rate = _store(with_orders, orders)
        shape = f"{args.lines} lines x 3 cells, {args.days} days"
        print(f"{len(states)} states, {len(orders)} maintenance order versions, {shape}")
        ratio = order_rate / state_rate
        print(f"store: states {state_rate:,.0f}/s, maintenance versions {order_rate:,.0f}/s ({ratio:.2f}x)")
        with Database(path=plain) as base_db, Database(path=with_orders) as db, facts.bypassed():
            base_cursor, cursor = base_db.reader(), db.reader()

            def oee_of(reader: object) -> Callable[[], object]:
                return lambda: oee(reader, section, path="acme", start=start, end=end, by="cell")  # type: ignore[arg-type]

            oee_of(base_cursor)(), oee_of(cursor)()  # warm both files' caches before timing either
            base_s, with_s = _interleaved(oee_of(base_cursor), oee_of(cursor), args.repeats)
            print(f"OEE by cell, {args.days} days direct: no orders {base_s:.3f} s, with orders {with_s:.3f} s "
                  f"({with_s / base_s:.2f}x)")  # fmt: skip
            now = end
            rel_s = _median_s(
                lambda: reliability(cursor, section, path="acme", start=start, end=end, now=now, by="cell"),
                args.repeats,
            )
            pareto_s = _median_s(lambda: fault_pareto(cursor, path="acme", start=start, end=end), args.repeats)
            print(f"reliability by cell {rel_s:.3f} s ({rel_s / with_s:.2f}x the OEE view); "
                  f"fault Pareto {pareto_s * 1000:.1f} ms ({pareto_s / with_s:.3f}x)")  # fmt: skip
            base_cursor.close()
            cursor.close()


if __name__ == "__main__":
    main()
