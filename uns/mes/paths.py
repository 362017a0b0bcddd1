"""Equipment paths in the MES tables: a path's line, and "this path or below it" in Python and in SQL."""

from __future__ import annotations

from uns.errors import BadArgument

__all__ = ["in_subtree", "line_of", "subtree_condition"]


def line_of(path: str) -> str:
    """The line of an equipment path: its first four levels (a shorter path is its own line)."""
    return "/".join(path.split("/")[:4])


def in_subtree(path: str, root: str) -> bool:
    """``path`` is ``root`` or below it (``subtree_condition`` in Python)."""
    return path == root or path.startswith(root + "/")


def subtree_condition(column: str, path: str | None) -> tuple[str, list[object]]:
    """SQL and parameters for ``column`` being ``path`` or below it (any path when None).

    ``starts_with``, not LIKE, because ids may hold ``_``.

    Raises:
        BadArgument: an empty path.
    """
    if path is None:
        return "true", []
    path = path.strip("/")
    if not path:
        raise BadArgument("path", "empty equipment path; give one like acme/dallas/packaging/line1")
    return f"({column} = ? OR starts_with({column}, ?))", [path, path + "/"]
