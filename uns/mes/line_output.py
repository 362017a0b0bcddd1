"""A line's output: which of its paths' counts are the line's units (the OEE, orders and scrap views' one rule).

A line's output is one path, chosen in this order (``line_output``; docs/mes.md, "A line's output"):

1. ``mes.output_cells[line]`` **set in the settings** (``output_cells``: the settings alone): a cell of the
   line, or the line path itself (a line-level counter). It wins: counts on the line path while it names a
   cell are **stray** (``is_stray_count``; stored, no figure of the line, counted and warned about by the
   adapter).
2. else the line's own counts, when the line path ever counted (a line-level counter beside cells that
   report only states): the line's units, as before 2026-12-07. When its cells count too, the adapter lists
   the line in its health and warns once, naming ``mes.output_cells.<line>`` to pin it.
3. else the default ``plant_outputs[line]`` (under the hub the line's last cell in the plant file,
   ``hub.app.mes_section``), so a cell that starts counting later moves no figure.
4. else the line's last cell by path that ever counted (a line the plant file does not declare, or declares
   without cells; the library called with neither mapping): that follows the data, so a cell sorting later
   that starts counting moves every figure of the line to it; configure the line to pin it.

Its units are the output's counts plus the scrap counted at the line's other cells (a unit scrapped anywhere on
the line was produced and lost), except on the lines of ``mes.output_only_lines``, whose cells count different
units (cases, then pallets): there the output's counts alone; when the output is the line path, its counts
alone. "Ever counted" is over every stored count, not the window's or the order's, so a view's groups never
disagree on which path is the output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Literal

__all__ = ["LineOutput", "OutputSource", "is_stray_count", "line_output", "unit_paths"]

OutputSource = Literal["settings", "line", "plant", "counts"]
"""What chose a line's output: the settings (1), the line's own counts (2), the plant file (3), the counts (4)."""

_NONE: Mapping[str, str] = MappingProxyType({})


@dataclasses.dataclass(frozen=True, slots=True)
class LineOutput:
    """A line's output: the path whose counts are its units, and which step of the rule chose it."""

    path: str
    source: OutputSource


def line_output(
    line: str, counting: Collection[str], output_cells: Mapping[str, str], plant_outputs: Mapping[str, str] = _NONE
) -> LineOutput | None:
    """``line``'s output: the setting, else the line path when it ever counted, else the plant's, else its last cell.

    ``counting``: the paths that ever counted (any line's; read only without a setting for the line).
    ``output_cells``: the settings' outputs alone; ``plant_outputs``: the defaults (the plant file's last cells).
    None when the line has none of the four.
    """
    configured = output_cells.get(line)
    if configured:
        return LineOutput(configured, "settings")
    if line in counting:
        return LineOutput(line, "line")
    default = plant_outputs.get(line)
    if default:
        return LineOutput(default, "plant")
    last = max((path for path in counting if path.startswith(line + "/")), default=None)
    return None if last is None else LineOutput(last, "counts")


def unit_paths(
    line: str,
    counting: Collection[str],
    output_cells: Mapping[str, str],
    *,
    output_only: bool,
    plant_outputs: Mapping[str, str] = _NONE,
) -> dict[str, bool]:
    """The paths whose counts make ``line``'s units: True for the whole count (the output), False for the scrap.

    A path left out adds nothing: the line path's own counts while the configured output is a cell (stray).
    ``counting``: every path that ever counted (any line's). ``output_only``: the line is one of
    ``mes.output_only_lines`` (its cells count different units: the output's count alone). ``output_cells`` and
    ``plant_outputs``: ``line_output``'s.
    """
    chosen = line_output(line, counting, output_cells, plant_outputs)
    if chosen is not None and chosen.path == line:
        return {line: True}
    output = None if chosen is None else chosen.path
    cells = sorted(path for path in counting if path.startswith(line + "/"))
    return {cell: cell == output for cell in cells if not output_only or cell == output}


def is_stray_count(path: str, output_cells: Mapping[str, str]) -> bool:
    """A count at ``path`` is a line's stray count: ``path`` is a line whose configured output is one of its cells.

    ``output_cells``: the settings' outputs alone (a default never makes a count stray).
    """
    configured = output_cells.get(path)
    return bool(configured) and configured != path
