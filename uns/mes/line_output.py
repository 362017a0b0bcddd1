"""A line's output: which of its paths' counts are the line's units (the OEE, orders and scrap views' one rule).

A line's units are the counts published on the line path itself when it ever published any; else its output
cell's (``mes.output_cells[line]``, default the line's last cell by path that ever counted: the same cell for
every order and window, so an order counted so far only upstream has made none of the line's units yet), plus
the scrap counted at its other cells (a unit scrapped anywhere on the line was produced and lost), except on
the lines of ``mes.output_only_lines``, whose cells count different units (cases, then pallets): there the
output cell's counts alone. "Ever counted" is over every stored count, not the window's or the order's, so
a view's groups never disagree on which cell is the output.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

__all__ = ["output_cell", "unit_paths"]


def output_cell(line: str, counting: Iterable[str], output_cells: Mapping[str, str]) -> str | None:
    """The cell whose counts are ``line``'s output: ``output_cells[line]``, else its last cell that ever counted.

    ``counting``: the paths that ever counted (any line's; read only without a configured output). None
    when the line has neither. The line path's own counts are not a cell: ``unit_paths`` puts them first.
    """
    configured = output_cells.get(line)
    if configured:
        return configured
    return max((path for path in counting if path.startswith(line + "/")), default=None)


def unit_paths(
    line: str, counting: Collection[str], output_cells: Mapping[str, str], *, output_only: bool
) -> dict[str, bool]:
    """The paths whose counts make ``line``'s units: True for the whole count (the output), False for the scrap.

    A path left out adds nothing. ``counting``: every path that ever counted (any line's). ``output_only``:
    the line is one of ``mes.output_only_lines`` (its cells count different units: the output's count alone).
    """
    if line in counting:
        return {line: True}
    output = output_cell(line, counting, output_cells)
    cells = sorted(path for path in counting if path.startswith(line + "/"))
    return {cell: cell == output for cell in cells if not output_only or cell == output}
