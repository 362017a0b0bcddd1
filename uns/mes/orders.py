"""Order progress against plan: quantities made, planned vs actual times, run time and projected end.

Read-only: takes a DuckDB cursor and runs in a caller's thread. An order's units are its line's
output, the OEE view's rule (``uns.mes.line_output``): the counts of the setting ``output_cells[line]`` (a
cell, or the line path itself); without one, the line path's own counts when there are any (of any order), else
the default ``plant_outputs[line]``, else the line's last cell by path with counts of any order, not only this
order's; scrap counted at any cell of
the line is the order's scrap, except on a line whose cells count different units
(``mes.output_only_lines``: cases, then pallets), where the output cell's scrap alone is. An order counted
at more than one line (its counts name it) has the sum of each line's units, as in the ``material`` and
``scrap`` views.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

import duckdb

from uns.clock import utc_now
from uns.errors import BadArgument
from uns.mes.line_output import unit_paths
from uns.mes.paths import line_of

__all__ = ["OrderProgress", "OrderStatus", "order_progress"]

OrderStatus = Literal["released", "running", "completed"]
_STATUSES = ("released", "running", "completed")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OrderProgress:
    """One work order against its plan."""

    order_id: str
    line: str
    product_id: str | None
    status: OrderStatus
    quantity: float | None
    """Planned quantity (the latest release)."""
    unit: str | None
    good: int
    scrap: int
    percent_complete: float | None
    """Good units as a percentage of the planned quantity."""
    planned_start: datetime | None
    planned_end: datetime | None
    actual_start: datetime | None
    actual_end: datetime | None
    run_time_s: float | None
    """Start to complete, or to ``now`` while running."""
    projected_end: datetime | None
    """While running: when the planned quantity is reached at the rate so far."""


_ORDERS = """
SELECT order_id,
       coalesce(arg_min(line, ts) FILTER (WHERE action = 'start'), arg_max(line, ts) FILTER (WHERE action = 'release')),
       arg_max(product_id, ts) FILTER (WHERE action = 'release'),
       arg_max(quantity, ts) FILTER (WHERE action = 'release'),
       arg_max(unit, ts) FILTER (WHERE action = 'release'),
       arg_max(planned_start, ts) FILTER (WHERE action = 'release'),
       arg_max(planned_end, ts) FILTER (WHERE action = 'release'),
       min(ts) FILTER (WHERE action = 'start'),
       min(ts) FILTER (WHERE action = 'complete')
FROM mes_work_orders GROUP BY order_id ORDER BY order_id
"""

_COUNTS = """
SELECT order_id, path, sum(good), sum(scrap) FROM mes_counts GROUP BY order_id, path
"""
"""Per order and path (counts without an order too: they say which paths count, as for the OEE view)."""


def order_progress(
    cursor: duckdb.DuckDBPyConnection,
    *,
    line: str | None = None,
    status: OrderStatus | None = None,
    now: datetime | None = None,
    output_cells: Mapping[str, str] | None = None,
    output_only: Collection[str] = (),
    plant_outputs: Mapping[str, str] | None = None,
) -> list[OrderProgress]:
    """Every work order (of ``line``, in ``status``), sorted by actual then planned start.

    Args:
        cursor: a DuckDB cursor on the historian database.
        line: only orders on this line (the line path, four levels).
        status: only orders released (not started), running or completed.
        now: the time a running order's run time and projection are measured to; default the clock.
        output_cells: line → its output set in the settings (a cell or the line; ``uns.mes.line_output``).
        output_only: lines whose cells count different units (``mes.output_only_lines``): the output's scrap alone.
        plant_outputs: line → its default output (the plant file's last cell), after the line's own counts.

    Raises:
        BadArgument: an unknown status or a naive ``now``.
    """
    if status is not None and status not in _STATUSES:
        raise BadArgument("status", f"must be one of {', '.join(_STATUSES)} (got {status!r})")
    if now is not None and now.tzinfo is None:
        raise BadArgument("now", "needs a time zone")
    when = now or utc_now()
    outputs, defaults = output_cells or {}, plant_outputs or {}
    made: dict[str, dict[str, tuple[int, int]]] = {}
    counting: set[str] = set()
    for order_id, path, good, scrap in cursor.execute(_COUNTS).fetchall():
        counting.add(path)
        if order_id is not None:
            made.setdefault(order_id, {})[path] = (int(good), int(scrap))
    result = []
    for order_id, order_line, product, quantity, unit, p_start, p_end, a_start, a_end in cursor.execute(
        _ORDERS
    ).fetchall():
        state: OrderStatus = "completed" if a_end is not None else "running" if a_start is not None else "released"
        if (line is not None and order_line != line) or (status is not None and state != status):
            continue
        mine = made.get(order_id, {})
        # its units at every line it counted at (the material and scrap views' sum), each line by its own rule
        units = [
            _units(mine, counted_at, outputs, counting, only=counted_at in output_only, defaults=defaults)
            for counted_at in sorted({line_of(path) for path in mine})
        ]
        good, scrap = sum(u[0] for u in units), sum(u[1] for u in units)
        run_s = None if a_start is None else ((a_end or when) - a_start).total_seconds()
        projected = None
        if state == "running" and run_s and good > 0 and quantity is not None:
            remaining = max(0.0, quantity - good)
            projected = when + timedelta(seconds=remaining * run_s / good)
        result.append(
            OrderProgress(
                order_id=order_id,
                line=order_line,
                product_id=product,
                status=state,
                quantity=quantity,
                unit=unit,
                good=good,
                scrap=scrap,
                percent_complete=None if not quantity else 100.0 * good / quantity,
                planned_start=p_start,
                planned_end=p_end,
                actual_start=a_start,
                actual_end=a_end,
                run_time_s=run_s,
                projected_end=projected,
            )
        )
    far = datetime.max.replace(tzinfo=UTC)
    result.sort(key=lambda o: (o.actual_start or far, o.planned_start or far, o.order_id))
    return result


def _units(
    by_path: Mapping[str, tuple[int, int]],
    line: str,
    outputs: Mapping[str, str],
    counting: Collection[str],
    *,
    only: bool = False,
    defaults: Mapping[str, str],
) -> tuple[int, int]:
    """Good at the line's output, scrap at every path whose counts are the line's units (``uns.mes.line_output``).

    The output is the OEE view's, from every path that ever counted (``counting``), not the last one this order
    counted at (early in an order that may be a case packer: cases are not the line's pallets).
    """
    paths = unit_paths(line, counting, outputs, output_only=only, plant_outputs=defaults)
    good = sum(by_path.get(path, (0, 0))[0] for path, whole in paths.items() if whole)
    return good, sum(by_path.get(path, (0, 0))[1] for path in paths)
