"""Lines whose output has counted nothing while another of their paths has: no good units, listed in the health.

A line's output is one path (``uns.mes.line_output``); under the hub, without ``mes.output_cells``, the
line's last cell in the plant file. A cell appended there without a counter, or a setting naming one, leaves
the line with no good units however much its other cells count, every past figure included. Nothing is
wrong with any single event, so nothing is refused: the adapter's health lists such lines (from every count
stored, the history read once at start), and the list empties as soon as the output counts.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from uns.mes.paths import line_of

__all__ = ["SilentOutputs"]

_LISTED = 100
"""Lines named in the health document."""


class SilentOutputs:
    """The paths that ever counted, against each line's output.

    Args:
        output_cells: line path -> its output (``mes.output_cells`` as the adapter runs it).
    """

    def __init__(self, output_cells: Mapping[str, str]) -> None:
        self._outputs = dict(output_cells)
        self._counted: set[str] = set()
        self._lines: set[str] = set()

    def load(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Every path the stored counts are at (once, at start, on the writer)."""
        for (path,) in connection.execute("SELECT DISTINCT path FROM mes_counts").fetchall():
            self.note(str(path), "production_count")

    def note(self, path: str, event: str) -> None:
        """A stored ``event`` at ``path``: a count makes its path and its line counted."""
        if event == "production_count" and path not in self._counted:
            self._counted.add(path)
            self._lines.add(line_of(path))

    def lines(self) -> list[str]:
        """The lines with counts whose output has none, sorted."""
        return sorted(
            line for line, output in self._outputs.items() if line in self._lines and output not in self._counted
        )

    def health(self) -> dict[str, object]:
        """``silent_output_lines``: the first 100 such lines, sorted."""
        return {"silent_output_lines": self.lines()[:_LISTED]}
