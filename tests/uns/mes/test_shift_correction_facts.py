"""A shift corrected after the fact hours of its old span were built (facts+memo and the interval SQL alike).

A ``shift`` re-sent with the same id at its path replaces the first (docs/mes.md): the hours the old
version covered and the new one does not change too (in shift before, planned now), so the facts of
those hours must be dropped, not only the new span's.
"""

from __future__ import annotations

from collections.abc import Callable

from model.config import MesSection
from tests.uns.mes import test_hand_cases as hand
from tests.uns.mes.mes_events import at
from tests.uns.mes.test_hand_cases import CELL, LINE, Rig, _shift, _times
from uns.mes.downtime import downtime
from uns.mes.oee import oee

rig = hand.rig  # the hand cases' fixture: sql, and facts with the memo


# A shift moved later after its hours were built: line1 "early" 06-14, the cell stopped (40000) from 05:00; the
# hours are built; then "early" is re-sent as 08-16 (the facts rebuild from the first dropped hour, 08:00, on).
#   query 06-16: window 36000, planned 7200 (06-08, outside every shift now), PBT 28800, availability 28800,
#   APT 0; by shift one row "early" 08-16; the Pareto's one bar 28800 s of availability loss.
#   Before: the facts kept 06-08 as in shift (36000 s availability loss, no planned time) while the SQL said
#   planned.
def test_a_shift_moved_later_after_its_hours_were_built(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    _shift(feeder, LINE, "early", at(24, 6), at(24, 14))
    feeder.states(CELL, [(at(24, 5), 40000)])
    case.reader().close()  # the hours are built with the first version
    _shift(feeder, LINE, "early", at(24, 8), at(24, 16), sent=at(24, 1))
    cursor = case.reader()
    (row,) = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 16))
    assert _times(row) == (36000, 7200, 28800, 28800, 0)
    (line,) = oee(cursor, section, path=LINE, start=at(24, 6), end=at(24, 16), by="line")
    assert _times(line) == (36000, 7200, 28800, 28800, 0)
    (shift,) = oee(cursor, section, path=CELL, start=at(24, 0), end=at(25, 0), by="shift")
    assert (shift.group, shift.start, shift.end, _times(shift)) == (
        "early", at(24, 8), at(24, 16), (28800, 0, 28800, 28800, 0),
    )  # fmt: skip
    bars = downtime(cursor, section, path=CELL, start=at(24, 6), end=at(24, 16))
    assert [(bar.availability_s, bar.performance_s) for bar in bars] == [(28800, 0)]
    cursor.close()


# A shift re-sent for another day after the first day's hours were built: line1 "early" 23rd 06-14, then
# (another one existing, "late" 24th 14-22, so the line keeps shifts) "early" re-sent as the 24th 06-14.
# The cell is stopped (40000) from the 23rd 05:00 on. The 23rd has no shift now: its 06-14 is planned
#   query 23rd 06-14: window 28800, planned 28800, PBT 0, avail 0. Before: the facts kept the old version's
#   in-shift hours (28800 s availability loss).
def test_a_shift_re_sent_for_another_day_after_its_hours_were_built(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    _shift(feeder, LINE, "early", at(23, 6), at(23, 14))
    feeder.states(CELL, [(at(23, 5), 40000)])
    case.reader().close()
    _shift(feeder, LINE, "early", at(24, 6), at(24, 14), sent=at(24, 1))
    cursor = case.reader()
    (row,) = oee(cursor, section, path=CELL, start=at(23, 6), end=at(23, 14))
    assert _times(row) == (28800, 28800, 0, 0, 0)
    assert downtime(cursor, section, path=CELL, start=at(23, 6), end=at(23, 14)) == []
    cursor.close()


# by=shift rows come by start, then end, of the hours shown (docs/mes.md), after clipping to the query:
#   the site's "x" 04-10 and line1's "y" 05-09; the cell produces from 03:00; query 06-12: both start at 06:00
#   there, "y" ends first: y [06, 09) 10800 s, then x [06, 10) 14400 s (before: x first, by the stored starts)
def test_shift_rows_by_the_start_and_end_shown(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    _shift(feeder, "acme/dallas", "x", at(24, 4), at(24, 10))
    _shift(feeder, LINE, "y", at(24, 5), at(24, 9))
    feeder.states(CELL, [(at(24, 3), 10000)])
    cursor = case.reader()
    rows = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 12), by="shift")
    assert [(r.group, r.start, r.end, r.time_s) for r in rows] == [
        ("y", at(24, 6), at(24, 9), 10800), ("x", at(24, 6), at(24, 10), 14400),
    ]  # fmt: skip
    cursor.close()
