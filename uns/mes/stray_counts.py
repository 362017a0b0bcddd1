"""Counts on a line path whose output is one of its cells: stored, no figure of the line, counted and warned about.

A line's output is one path (``uns.mes.line_output``). A ``production_count`` published on the line path
itself while the setting ``mes.output_cells.<line>`` names a cell is a stray count (a typo, a test publish; a
default, the plant file's last cell, never makes one: without a setting the line's own counts are its units):
it is stored like every event, but no view counts it as the line's units, so it cannot move the line's
figures. The adapter's health counts and lists them, and the log
says so once per line, naming the setting that would make the line's own counts its output.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from uns.mes.line_output import is_stray_count
from uns.mes.path_tally import PathTally

__all__ = ["StrayCounts"]

log = logging.getLogger(__name__)


class StrayCounts:
    """The line paths stored counts arrived at while the line's output is a cell.

    Args:
        output_cells: line path -> its output set in the settings (``mes.output_cells``, no default).
    """

    def __init__(self, output_cells: Mapping[str, str]) -> None:
        self._outputs = dict(output_cells)
        self._tally = PathTally()

    def note(self, path: str, event: str, topic: str) -> bool:
        """Count a stored ``event`` at ``path``; True when it is a stray count (warned about on a line's first)."""
        if event != "production_count" or not is_stray_count(path, self._outputs):
            return False
        if self._tally.add(path):
            log.warning(
                "production_count on line path %s (%s): the line's output is %s, so counts on the line itself are no"
                " figure of it; stored and counted as stray_counts in the health; fix the publisher's topic, or set"
                " mes.output_cells.%s: %s to count the line at its own path",
                path,
                topic,
                self._outputs[path],
                path,
                path,
            )
        return True

    def health(self) -> dict[str, object]:
        """``stray_count_lines`` (how many), ``stray_count_paths`` (the first 100, sorted) and ``stray_counts``."""
        return {
            "stray_count_lines": len(self._tally),
            "stray_count_paths": self._tally.listed(),
            "stray_counts": self._tally.events,
        }
