"""Whether a view's equipment path exists: in the plant file, or as the path of stored MES events.

A mistyped path used to answer 200 with zeros, which reads like a stopped line. A path that names
no equipment of the plant file and has no MES events at or below it is refused with
``UnknownPath`` (HTTP 404, CLI exit 1), naming the nearest known paths. A path of the plant file is
answered at once; only an unknown one costs a look at the event tables.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

import duckdb

__all__ = ["EVENT_TABLES", "UnknownPath", "check_path", "event_paths", "nearest_paths"]

EVENT_TABLES = (
    "mes_states",
    "mes_counts",
    "mes_reasons",
    "mes_shifts",
    "mes_work_orders",
    "mes_products",
    "mes_inspections",
    "mes_labor",
    "mes_consumption",
    "mes_lots",
    "mes_maintenance_orders",
)
"""The typed MES tables: a path with a row in one of them is known."""
_NEAREST = 5


class UnknownPath(ValueError, LookupError):
    """No equipment and no MES events at ``path`` (or below it): most likely a typo."""

    def __init__(self, path: str, nearest: list[str], *, field: str = "path") -> None:
        self.path = path
        self.nearest = nearest
        self.field = field
        hint = f"nearest known: {', '.join(nearest)}" if nearest else "no equipment or MES events are known yet"
        super().__init__(f"no equipment and no MES events at {path}; {hint}")


def event_paths(cursor: duckdb.DuckDBPyConnection) -> set[str]:
    """Every equipment path with at least one stored MES event."""
    union = " UNION ".join(f"SELECT DISTINCT path FROM {table}" for table in EVENT_TABLES)  # noqa: S608 - fixed names
    return {str(path) for (path,) in cursor.execute(union).fetchall()}


def nearest_paths(path: str, known: Collection[str], limit: int = _NEAREST) -> list[str]:
    """Known paths most like ``path``: the closest spellings, then the children of its longest known ancestor."""
    close = difflib.get_close_matches(path, list(known), n=limit, cutoff=0.6)
    levels = path.split("/")
    for depth in range(len(levels) - 1, 0, -1):
        ancestor = "/".join(levels[:depth])
        if ancestor in known:
            children = sorted(p for p in known if p.startswith(ancestor + "/") and p.count("/") == depth)
            close += [p for p in (children or [ancestor]) if p not in close]
            break
    return close[:limit]


def check_path(
    cursor: duckdb.DuckDBPyConnection, path: str, equipment: Collection[str], *, field: str = "path"
) -> None:
    """Return when ``path`` is equipment of the plant file or has MES events at or below it.

    Raises:
        UnknownPath: naming the nearest known paths (plant equipment and event paths).
    """
    path = path.strip("/")
    if not path or path in equipment:
        return  # an empty path is the views' own BadArgument
    for table in EVENT_TABLES:
        found = cursor.execute(
            f"SELECT 1 FROM {table} WHERE path = ? OR starts_with(path, ?) LIMIT 1",  # noqa: S608 - fixed names
            [path, path + "/"],
        ).fetchone()
        if found is not None:
            return
    raise UnknownPath(path, nearest_paths(path, set(equipment) | event_paths(cursor)), field=field)
