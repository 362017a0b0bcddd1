"""A line's output: which of its paths' counts are the line's units (the OEE, orders and scrap views' one rule).

A line's output is one path, ``mes.output_cells[line]``: under the hub every line of the plant file has one, the
setting, else the line's last cell in the plant file (``hub.app.line_outputs``), so a count never moves it and the
plant page names it. It may be the line path itself (a line-level counter). Its units are the output's counts
plus the scrap counted at the line's other cells (a unit scrapped anywhere on the line was produced and lost),
except on the lines of ``mes.output_only_lines``, whose cells count different units (cases, then pallets):
there the output's counts alone.

Counts published on the line path while its output is a cell are **stray** (a typo, a test publish): no figure
of the line (``is_stray_count``; the adapter counts them in its health and warns once per line), where before
2026-12-07 one such count, ever, made the line's own counts its units, past figures included. A line without
an output (one the plant file does not declare, or declares without cells, and the settings leave out; the
library called without ``output_cells``) falls back to its own counts when it ever published any, else its last
cell by path that ever counted: that fallback follows the data, so a cell sorting later that starts counting
moves every figure of the line to it; configure the line to pin it. "Ever counted" is over every stored count,
not the window's or the order's, so a view's groups never disagree on which cell is the output.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

__all__ = ["is_stray_count", "output_cell", "unit_paths"]


def output_cell(line: str, counting: Iterable[str], output_cells: Mapping[str, str]) -> str | None:
    """The path whose counts are ``line``'s output: ``output_cells[line]``, else its last cell that ever counted.

    ``counting``: the paths that ever counted (any line's; read only without a configured output). None
    when the line has neither. Without a configured output the line path's own counts are not a cell:
    ``unit_paths`` puts them first.
    """
    configured = output_cells.get(line)
    if configured:
        return configured
    return max((path for path in counting if path.startswith(line + "/")), default=None)


def unit_paths(
    line: str, counting: Collection[str], output_cells: Mapping[str, str], *, output_only: bool
) -> dict[str, bool]:
    """The paths whose counts make ``line``'s units: True for the whole count (the output), False for the scrap.

    A path left out adds nothing: the line path's own counts while the configured output is a cell (stray).
    ``counting``: every path that ever counted (any line's). ``output_only``: the line is one of
    ``mes.output_only_lines`` (its cells count different units: the output's count alone).
    """
    configured = output_cells.get(line)
    if configured == line or (not configured and line in counting):
        return {line: True}
    output = output_cell(line, counting, output_cells)
    cells = sorted(path for path in counting if path.startswith(line + "/"))
    return {cell: cell == output for cell in cells if not output_only or cell == output}


def is_stray_count(path: str, output_cells: Mapping[str, str]) -> bool:
    """A count at ``path`` is a line's stray count: ``path`` is a line whose configured output is one of its cells."""
    configured = output_cells.get(path)
    return bool(configured) and configured != path
