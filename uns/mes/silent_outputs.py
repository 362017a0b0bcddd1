"""The paths that ever counted, against each line's output: lines left with no units, lines counting at two levels.

A line's output is one path (``uns.mes.line_output``): the setting, else the line path when it ever counted,
else the plant file's last cell. Two cases no single event shows, so nothing is refused, the health lists them:

- ``silent_output_lines``: the output has counted nothing while another path of the line has (a cell appended
  to the plant file without a counter, or a setting naming one): no good units, every past figure included.
  A line leaves the list with its output's first count.
- ``own_count_lines``: no setting, and both the line path and its cells have counted: the line's own counts
  are its units (as before 2026-12-07), the cells' counts no figure of the line. The log says so once per
  line, naming ``mes.output_cells.<line>`` to pin one or the other.

From every stored count: the paths read once at start (``load``), then each stored count (``note``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import duckdb

from uns.mes.line_output import line_output
from uns.mes.path_tally import LISTED
from uns.mes.paths import line_of

__all__ = ["SilentOutputs"]

log = logging.getLogger(__name__)


class SilentOutputs:
    """The paths that ever counted, against each line's output.

    Args:
        output_cells: line path -> its output set in the settings (``mes.output_cells``).
        plant_outputs: line path -> its default output (the plant file's last cell, ``mes.plant_outputs``).
    """

    def __init__(self, output_cells: Mapping[str, str], plant_outputs: Mapping[str, str]) -> None:
        self._explicit = dict(output_cells)
        self._plant = dict(plant_outputs)
        self._counted: set[str] = set()
        self._lines: set[str] = set()
        self._with_cells: set[str] = set()
        """Lines one of whose cells (a path below the line) counted."""

    def load(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Every path the stored counts are at (once, at start, on the writer)."""
        for (path,) in connection.execute("SELECT DISTINCT path FROM mes_counts ORDER BY path").fetchall():
            self.note(str(path), "production_count")

    def note(self, path: str, event: str) -> None:
        """A stored ``event`` at ``path``: a count makes its path and its line counted."""
        if event != "production_count" or path in self._counted:
            return
        line = line_of(path)
        listed = self._counts_at_two_levels(line)  # a line once listed stays: the counted paths only grow
        self._counted.add(path)
        self._lines.add(line)
        if path != line:
            self._with_cells.add(line)
        if listed or not self._counts_at_two_levels(line):
            return
        log.warning(
            "production_count on line path %s and on its cells: with no mes.output_cells.%s the line's own counts are"
            " its units, its cells' counts no figure of it; set mes.output_cells.%s to %s (or to one of its cells) to"
            " pin it; listed as own_count_lines in the health",
            line,
            line,
            line,
            line,
        )

    def counted(self) -> frozenset[str]:
        """Every path a count is stored at."""
        return frozenset(self._counted)

    def lines(self) -> list[str]:
        """The lines with counts whose output has none, sorted.

        Only a line with a setting or a plant default can be one: else its output (its own path, or its last cell
        that counted) has counted by definition; so ``line_output`` never scans the counted paths here.
        """
        found = []
        for line in sorted((self._explicit.keys() | self._plant.keys()) & self._lines):
            chosen = line_output(line, self._counted, self._explicit, self._plant)
            if chosen is not None and chosen.path not in self._counted:
                found.append(line)
        return found

    def _counts_at_two_levels(self, line: str) -> bool:
        """``line`` has no setting, and both its path and one of its cells counted (an own-count line)."""
        return line in self._with_cells and line in self._counted and not self._explicit.get(line)

    def health(self) -> dict[str, object]:
        """``silent_output_lines`` and ``own_count_lines``: the first 100 such lines of each, sorted."""
        return {
            "silent_output_lines": self.lines()[:LISTED],
            "own_count_lines": sorted(filter(self._counts_at_two_levels, self._with_cells))[:LISTED],
        }
