"""Pick lists for the MES dashboards: the characteristics inspected in a scope, and the recent lots made there.

Read-only: every function takes a DuckDB cursor and runs in a caller's thread. Both answer what a
selector needs (a name, how many, the latest value) so the page can offer only what has data.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import duckdb

from uns.errors import BadArgument
from uns.mes.paths import line_of, subtree_condition
from uns.query.timespec import UTC_ZONE, checked_window, instant

__all__ = ["MAX_LOTS", "CharacteristicRow", "LotRow", "characteristics", "lots"]

MAX_LOTS = 1000
"""The most lots one ``lots`` call answers."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CharacteristicRow:
    """One characteristic inspected in the scope and window."""

    characteristic: str
    count: int
    """Inspections of it (measured or pass/fail)."""
    measured: int
    """Inspections with a value (what an SPC chart can plot)."""
    failed: int
    last_value: float | None
    """The latest measured value."""
    last_ts: datetime
    """The latest inspection's time."""
    unit: str | None
    lower_limit: float | None
    """The latest given specification limits."""
    upper_limit: float | None


_CHARACTERISTICS = """
SELECT characteristic, count(*), count(value), count(*) FILTER (WHERE result = 'fail'),
       arg_max(value, ts) FILTER (WHERE value IS NOT NULL), epoch_ms(max(ts)),
       arg_max(unit, ts) FILTER (WHERE unit IS NOT NULL),
       arg_max(lower_limit, ts) FILTER (WHERE lower_limit IS NOT NULL),
       arg_max(upper_limit, ts) FILTER (WHERE upper_limit IS NOT NULL)
FROM mes_inspections WHERE {where} AND ts >= ? AND ts < ?
GROUP BY characteristic ORDER BY characteristic
"""


def characteristics(
    cursor: duckdb.DuckDBPyConnection,
    *,
    path: str | None,
    start: datetime,
    end: datetime,
    tz: ZoneInfo = UTC_ZONE,
) -> list[CharacteristicRow]:
    """Every characteristic inspected at or under ``path`` (anywhere when None) in ``[start, end)``, by name.

    Raises:
        BadArgument: a naive or empty time range, or an empty path.
    """
    low, high = checked_window(start, end)
    where, params = subtree_condition("path", path)
    rows = cursor.execute(_CHARACTERISTICS.format(where=where), [*params, low, high]).fetchall()
    return [
        CharacteristicRow(
            characteristic=name, count=int(count), measured=int(measured), failed=int(failed), last_value=last,
            last_ts=instant(last_ms, tz), unit=unit, lower_limit=lower, upper_limit=upper,
        )
        for name, count, measured, failed, last, last_ms, unit, lower, upper in rows
    ]  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LotRow:
    """One lot made in the scope and window (its latest lot_production event)."""

    lot_id: str
    product_id: str | None
    quantity: float | None
    unit: str | None
    order_id: str | None
    path: str
    """Where it was made."""
    line: str
    ts: datetime
    """When it was made."""
    inputs: int
    """Input lots it names (0 for a lot made from nothing traced)."""


_LOTS = """
SELECT l.lot_id, l.product_id, l.quantity, l.unit, l.order_id, l.path, epoch_ms(l.ts),
       (SELECT count(DISTINCT i.input_lot_id) FROM mes_lot_inputs i WHERE i.lot_id = l.lot_id)
FROM mes_lots l
WHERE {where} AND l.ts >= ? AND l.ts < ?
  AND (? = '' OR contains(lower(l.lot_id), ?) OR contains(lower(coalesce(l.product_id, '')), ?)
       OR contains(lower(coalesce(l.order_id, '')), ?))
QUALIFY row_number() OVER (PARTITION BY l.lot_id ORDER BY l.ts DESC, l.received DESC) = 1
ORDER BY l.ts DESC, l.lot_id LIMIT ?
"""


def lots(
    cursor: duckdb.DuckDBPyConnection,
    *,
    path: str | None,
    start: datetime,
    end: datetime,
    query: str = "",
    limit: int = 100,
    tz: ZoneInfo = UTC_ZONE,
) -> list[LotRow]:
    """Lots made at or under ``path`` in ``[start, end)``, newest first.

    Args:
        cursor: a DuckDB cursor on the historian database.
        path: the equipment scope; None for every path.
        start: the window's start.
        end: the window's end.
        query: keep lots whose id, product or order contains it (case-insensitive); empty keeps all.
        limit: the most rows, 1..``MAX_LOTS``.
        tz: the zone of the times returned.

    Raises:
        BadArgument: a naive or empty time range, an empty path, or a limit out of range.
    """
    low, high = checked_window(start, end)
    if not 1 <= limit <= MAX_LOTS:
        raise BadArgument("limit", f"must be 1..{MAX_LOTS} (got {limit})")
    where, params = subtree_condition("l.path", path)
    needle = query.strip().lower()
    rows = cursor.execute(
        _LOTS.format(where=where), [*params, low, high, needle, needle, needle, needle, limit]
    ).fetchall()
    return [
        LotRow(
            lot_id=lot, product_id=product, quantity=quantity, unit=unit, order_id=order, path=where_made,
            line=line_of(where_made), ts=instant(ms, tz), inputs=int(inputs),
        )
        for lot, product, quantity, unit, order, where_made, ms, inputs in rows
    ]  # fmt: skip
