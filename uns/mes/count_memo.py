"""OEE's units through the views' memo: ``count_facts.count_rows`` with its joins done in Python.

The SQL of ``count_facts`` joins, on every request, each count to its order (the named one, else the
one running on its line then), the order to its product and the product to its ideal cycle time:
~20 ms of DuckDB operators for a few hundred counts. With a memo (``uns.mes.memo``) the orders and
products are kept in memory (dropped by any ``work_order`` or ``product_type`` stored), the count
facts of closed hours too (dropped as ``CountFacts`` drops them), and only the counts of the
directly read stretches come from DuckDB. Those are summed there, per path, order, line and stretch
between two cuts (a window's edge, an order's start or complete: between two cuts every count of a
path, order and line lands in the same windows with the same order), so a view of the open hour
reads a few dozen sums instead of every count (~5 a second in the demo plant, 20k by the hour's
end, each looked at in Python on every KPI tick). The rows are the same
(entity, group, ideal cycle time, units, good) as the SQL's, so OEE is byte for byte the same: the
facts tests compare both ways.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence

import duckdb

from uns.clock import HOUR_US, at_epoch_us, epoch_us
from uns.mes.intervals import Window
from uns.mes.memo import ViewMemo

__all__ = ["Orders", "load_orders", "load_products", "memo_count_rows"]

_INF = 2**63

_ORDERS = """SELECT order_id, arg_max(product_id, ts) FILTER (WHERE action = 'release'),
    epoch_us(min(ts) FILTER (WHERE action = 'start')), epoch_us(min(ts) FILTER (WHERE action = 'complete')),
    arg_min(line, ts) FILTER (WHERE action = 'start')
FROM mes_work_orders GROUP BY order_id"""
"""``count_facts._ORD``, as rows."""

_PRODUCTS = "SELECT product_id, arg_max(ideal_cycle_time_s, ts) FROM mes_products GROUP BY product_id"

_DIRECT = """SELECT c.path, min(epoch_us(c.ts)), sum(c.total), sum(c.good), c.order_id, c.line
FROM mes_counts c ASOF LEFT JOIN (SELECT unnest($cuts::BIGINT[]) AS cut) k ON epoch_us(c.ts) >= k.cut
WHERE c.path IN (SELECT unnest($paths::VARCHAR[])) AND c.ts >= $lo AND c.ts < $hi
GROUP BY c.path, c.order_id, c.line, k.cut"""
"""The counts of a direct stretch summed per path, order, line and stretch between cuts (µs), with the first
instant of each: a count's windows and running order are those of any instant between the same two cuts. The sums
stay HUGEINT (Python ints), as the SQL's ``sum(t)``: a cast to BIGINT failed where two stored counts pass 2**63."""


@dataclasses.dataclass(frozen=True, slots=True)
class Orders:
    """The work orders as the attribution reads them."""

    product: Mapping[str, str | None]
    """Order -> its product (the latest release's)."""
    lines: Mapping[str, tuple[Sequence[int], Sequence[tuple[str, int | None]], Sequence[int]]]
    """Line -> started orders by start: starts (µs), (order, complete µs or None), running max of the ends."""
    instants: Sequence[int] = ()
    """Every started order's start and complete (µs), sorted: where the order running on a line may change."""

    def instants_in(self, lo: int, hi: int) -> Sequence[int]:
        """The instants of ``[lo, hi)`` (µs) where an order starts or completes."""
        return self.instants[bisect.bisect_left(self.instants, lo) : bisect.bisect_left(self.instants, hi)]

    def running(self, line: str, at: int) -> str | None:
        """The order running on ``line`` at ``at`` (µs): the latest started of those not completed then.

        Of two started at one instant the greater order id (the SQL's ``ORDER BY o_start DESC, order_id DESC``).
        """
        found = self.lines.get(line)
        if found is None:
            return None
        starts, items, reach = found
        index = bisect.bisect_right(starts, at) - 1
        while index >= 0 and reach[index] > at:  # no earlier order runs past ``at``: stop
            order, end = items[index]
            if end is None or end > at:
                return order
            index -= 1
        return None


def load_orders(cursor: duckdb.DuckDBPyConnection) -> Orders:
    """Every order's product, start, complete and line (one small aggregate)."""
    product: dict[str, str | None] = {}
    started: dict[str, list[tuple[int, str, int | None]]] = {}
    for order, prod, start, end, line in cursor.execute(_ORDERS).fetchall():
        product[str(order)] = prod
        if start is not None and line is not None:
            started.setdefault(str(line), []).append((int(start), str(order), None if end is None else int(end)))
    lines: dict[str, tuple[Sequence[int], Sequence[tuple[str, int | None]], Sequence[int]]] = {}
    for line, items in started.items():
        items.sort(key=lambda item: (item[0], item[1]))  # ties by start: the greater order id scanned first
        reach = _reach(_INF if end is None else end for _, _, end in items)
        lines[line] = (tuple(i[0] for i in items), tuple((i[1], i[2]) for i in items), tuple(reach))
    instants = sorted(
        {t for items in started.values() for start, _, end in items for t in (start, end) if t is not None}
    )
    return Orders(product, lines, tuple(instants))


def load_products(cursor: duckdb.DuckDBPyConnection) -> Mapping[str, float | None]:
    """Every product's ideal cycle time (the latest)."""
    return {str(p): None if ict is None else float(ict) for p, ict in cursor.execute(_PRODUCTS).fetchall()}


def _reach(ends: Iterable[int]) -> list[int]:
    """The running maximum of spans' ends in start order: a scan back from a span stops where none reaches on."""
    return list(itertools.accumulate(ends, max))


def memo_count_rows(
    cursor: duckdb.DuckDBPyConnection,
    memo: ViewMemo,
    paths: Sequence[tuple[str, str, bool, float | None, bool]],
    windows: Sequence[Window],
    *,
    hours: Sequence[int],
    direct: Sequence[tuple[int, int]],
) -> list[tuple[str, str, float | None, int, int]]:
    """``count_facts.count_rows`` for the planned fact ``hours`` and ``direct`` stretches (µs), through ``memo``."""
    orders = memo.table("orders", cursor, load_orders)
    products = memo.table("products", cursor, load_products)
    count_paths = sorted({p[1] for p in paths})
    src: list[tuple[str, int, int, str | None, int, int]] = []
    edges = sorted({epoch_us(edge) for w in windows if w.order is None for edge in (w.start, w.end)})
    for lo, hi in direct:
        cuts = sorted({*(e for e in edges if lo < e < hi), *orders.instants_in(lo + 1, hi)})
        params = {"paths": count_paths, "lo": at_epoch_us(lo), "hi": at_epoch_us(hi), "cuts": cuts}
        for path, ts, total, good, order, line in cursor.execute(_DIRECT, params).fetchall():
            oid = order if order is not None else orders.running(str(line), int(ts))
            src.append((str(path), int(ts), int(ts) + 1, oid, int(total), int(good)))
    if hours:
        facts = memo.counts(cursor, count_paths)
        for path in count_paths:
            of_path = facts[path]
            for hour in hours:
                for oid, total, good in of_path.get(hour, ()):
                    src.append((path, hour * HOUR_US, (hour + 1) * HOUR_US, oid, total, good))
    by_path: dict[str, list[tuple[str, bool, float | None, bool]]] = {}
    for entity, path, output, fallback, by_product in paths:
        by_path.setdefault(path, []).append((entity, output, fallback, by_product))
    timed: dict[str, tuple[list[int], list[tuple[str, int, int]], list[int]]] = {}
    ordered: dict[tuple[str, str], list[str]] = {}
    for window in windows:
        if window.order is not None:
            ordered.setdefault((window.entity, window.order), []).append(window.group)
    for entity in {w.entity for w in windows if w.order is None}:
        mine = sorted(
            (epoch_us(w.start), epoch_us(w.end), w.group) for w in windows if w.order is None and w.entity == entity
        )
        timed[entity] = ([s[0] for s in mine], [(s[2], s[0], s[1]) for s in mine], _reach(s[1] for s in mine))
    sums: dict[tuple[str, str, float | None], list[int]] = {}
    for path, a, b, oid, total, good in src:
        for entity, output, fallback, by_product in by_path.get(path, ()):
            product = orders.product.get(oid) if by_product and oid is not None else None
            ideal = products.get(product) if product is not None else None
            ideal = fallback if ideal is None else ideal
            units, kept = (total, good) if output else (total - good, 0)
            groups = list(ordered.get((entity, oid), ())) if oid is not None else []
            found = timed.get(entity)
            if found is not None:
                starts, spans, reach = found
                index = bisect.bisect_right(starts, a) - 1
                while index >= 0 and reach[index] >= b:
                    group, ws, wt = spans[index]
                    if ws <= a and b <= wt:
                        groups.append(group)
                    index -= 1
            for group in groups:
                entry = sums.setdefault((entity, group, ideal), [0, 0])
                entry[0] += units
                entry[1] += kept
    return [(entity, group, ideal, t, g) for (entity, group, ideal), (t, g) in sums.items()]
