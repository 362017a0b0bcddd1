"""Benchmark: what attributing MES events by their own timestamp costs the store.

One line, ``--days`` of 30-minute work orders back to back, a count every ``--count-s`` at each of 3
cells, stored through the real ``MesStore`` into a DuckDB file in a temp dir. In the same process:

1. Storing counts: the baseline names ``order_id`` in every count (no lookup); the new path leaves
   it out, so the store looks the order up by the count's timestamp (``uns.mes.attribution``).
   Each goes into its own file, same counts, same batches of 2,000.
2. A work order ``complete`` + next ``start`` on a line holding that history: on time (stamped
   after every stored count, as usual: nothing to re-attribute) against one posted a day late
   (every count of that day whose order the MES filled in is read and re-attributed).

    uv run python -m bench.mes_attribution [--days 7] [--count-s 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import orjson

from model.config import MesSection
from model.mes import EVENT_MODELS
from uns.mes.store import Incoming, MesStore
from uns.store.database import Database

__all__ = ["main"]

LINE = "acme/dallas/bottling/line1"
CELLS = [f"{LINE}/{cell}" for cell in ("filler", "capper", "labeler")]
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
ORDER_MS = 30 * 60_000
DAY_MS = 86_400_000
BATCH = 2_000


def _item(path: str, event: str, body: dict[str, object]) -> Incoming:
    raw = orjson.dumps(body)
    model = EVENT_MODELS[event].model_validate_json(raw)
    return Incoming(topic=f"{path}/mes/{event}", path=path, event=event, body=model, received_ms=T0, raw=raw)


def _long_start(days: int) -> int:
    """The last order runs the last two days (still running), so it can be completed a day late."""
    return T0 + (days - 2) * DAY_MS


def _order_at(days: int, at: int) -> str:
    return "LONG" if at >= _long_start(days) else f"O{(at - T0) // ORDER_MS}"


def _orders(days: int) -> list[Incoming]:
    items: list[Incoming] = []
    starts = [(f"O{index}", T0 + index * ORDER_MS) for index in range((days - 2) * DAY_MS // ORDER_MS)]
    starts.append(("LONG", _long_start(days)))
    for order, at in starts:
        release = {"timestamp_ms": T0, "order_id": order, "action": "release", "product_id": "P", "quantity": 1}
        items.append(_item(LINE, "work_order", release))
        items.append(_item(LINE, "work_order", {"timestamp_ms": at, "order_id": order, "action": "start"}))
        if order != "LONG":
            end = {"timestamp_ms": at + ORDER_MS, "order_id": order, "action": "complete"}
            items.append(_item(LINE, "work_order", end))
    return items


def _counts(days: int, count_s: int, *, named: bool) -> list[Incoming]:
    items: list[Incoming] = []
    for at in range(T0 + 1, T0 + days * DAY_MS - 1, count_s * 1000):
        for cell in CELLS:
            body: dict[str, object] = {"timestamp_ms": at, "total": 10}
            if named:
                body["order_id"] = _order_at(days, at)
            items.append(_item(cell, "production_count", body))
    return items


def _store(directory: Path, name: str, orders: list[Incoming], counts: list[Incoming]) -> tuple[Database, float]:
    database = Database(path=directory / f"{name}.duckdb")
    database.open()
    store = MesStore(database.connection, MesSection())
    for start in range(0, len(orders), BATCH):
        store.apply(orders[start : start + BATCH])
    began = time.perf_counter()
    for start in range(0, len(counts), BATCH):
        outcomes = store.apply(counts[start : start + BATCH])
        assert all(o.status == "stored" for o in outcomes), outcomes[0]
    return database, time.perf_counter() - began


def _switch(database: Database, days: int, *, late_by_ms: int) -> tuple[float, int]:
    """Complete the running order and start another, stamped ``late_by_ms`` before the data's end."""
    store = MesStore(database.connection, MesSection())
    at = T0 + days * DAY_MS - late_by_ms
    release = {"timestamp_ms": T0, "order_id": "NEXT", "action": "release", "product_id": "P", "quantity": 1}
    store.apply([_item(LINE, "work_order", release)])
    moved: list[int] = []
    store.changes.subscribe(lambda changes: moved.append(sum(c.event == "production_count" for c in changes)))
    began = time.perf_counter()
    outcomes = store.apply(
        [
            _item(LINE, "work_order", {"timestamp_ms": at, "order_id": "LONG", "action": "complete"}),
            _item(LINE, "work_order", {"timestamp_ms": at, "order_id": "NEXT", "action": "start"}),
        ]
    )
    elapsed = time.perf_counter() - began
    assert [o.status for o in outcomes] == ["stored", "stored"], outcomes
    return elapsed, sum(moved)


def main() -> None:
    """Print the figures and their ratios against the baselines."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=7, help="days of orders and counts (at least 3)")
    parser.add_argument("--count-s", type=int, default=10, help="seconds between counts at each cell")
    args = parser.parse_args()
    orders = _orders(args.days)
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        named = _counts(args.days, args.count_s, named=True)
        baseline, base_s = _store(directory, "named", orders, named)
        baseline.close()
        counts = _counts(args.days, args.count_s, named=False)
        database, new_s = _store(directory, "by_time", orders, counts)
        n = len(counts)
        print(f"{n:,} counts, {len(orders):,} work order events, {args.days} days")
        print(f"store, order named (baseline): {n / base_s:,.0f} counts/s")
        print(f"store, order by timestamp:     {n / new_s:,.0f} counts/s  ({base_s / new_s:.2f}x the baseline's rate)")
        # stamped 1 ms before the data's end the switch moves nothing; a day late it moves a day of counts
        on_time_s, on_time_moved = _switch(database, args.days, late_by_ms=1)
        database.close()
        database, _ = _store(directory, "late", orders, counts)
        late_s, late_moved = _switch(database, args.days, late_by_ms=DAY_MS)
        database.close()
    print(f"complete+start on time: {on_time_s * 1000:.1f} ms, {on_time_moved} counts re-attributed")
    print(f"complete+start a day late: {late_s * 1000:.1f} ms, {late_moved:,} counts re-attributed"
          f" ({late_s / on_time_s:.1f}x on time)")  # fmt: skip


if __name__ == "__main__":
    main()
