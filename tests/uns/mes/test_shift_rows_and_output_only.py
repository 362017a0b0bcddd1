"""Review of 3876af6 (output-only lines in the scrap and orders views) and f8d2f41 (by=shift rows per shift).

Hand figures in each case's comment, read through the interval SQL and through the facts with the memo
(the ``rig`` of ``test_hand_cases``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from model.config import MesSection
from tests.uns.mes import test_hand_cases as hand
from tests.uns.mes.mes_events import Feeder, at
from tests.uns.mes.test_hand_cases import CELL, LINE, Rig, _shift, _times
from uns.mes.downtime import current
from uns.mes.oee import oee
from uns.mes.views_api import run_view
from uns.query.args import document_bytes

rig = hand.rig  # the hand cases' fixture: sql, and facts with the memo
PACKAGING = "acme/dallas/packaging/line3"
PACKER, PALLETIZER = f"{PACKAGING}/case-packer", f"{PACKAGING}/palletizer"


def _view(
    cursor: Any, section: MesSection, view: str, params: dict[str, list[str]], now: datetime | None = None
) -> list[dict[str, Any]]:
    """The view's JSON rows, as ``GET /api/mes/<view>`` answers them (asked at ``now``, default 25 01:00)."""
    document = run_view(cursor, section, view, params, now=now or at(25, 1))
    rows: list[dict[str, Any]] = orjson.loads(document_bytes(document))["rows"]
    return rows


def _two_orders(feeder: Feeder, line: str, orders: tuple[str, str], product: str, quantity: int) -> None:
    """Both released at 02:00 on the 24th, the first run 05:00-06:00, the second from 06:00."""
    for order, hour in zip(orders, (5, 6), strict=True):
        release = {"order_id": order, "action": "release", "product_id": product, "quantity": quantity}
        assert feeder.send(line, "work_order", at(24, 2), **release).status == "stored"
        assert feeder.send(line, "work_order", at(24, hour), order_id=order, action="start").status == "stored"
        if order == orders[0]:
            assert feeder.send(line, "work_order", at(24, 6), order_id=order, action="complete").status == "stored"


# A shift_id re-sent at its path for another day replaces the first (docs/mes.md: one occurrence at its path):
#   line1 "early" 23rd 06-14, then re-sent as the 24th 06-14. The time model keeps only the 24th's, so the 23rd
#   has no shift: by=shift over the 23rd is no row (before: a row of the replaced version, as the window filter
#   ran before the latest-version pick), over the 24th one row 06-14; the cell produces from the 23rd 05:00.
def test_a_shift_re_sent_for_another_day_leaves_no_row_on_the_first(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    _shift(feeder, LINE, "early", at(23, 6), at(23, 14))
    _shift(feeder, LINE, "early", at(24, 6), at(24, 14), sent=at(24, 1))
    feeder.states(CELL, [(at(23, 5), 10000)])
    cursor = case.reader()
    assert oee(cursor, section, path=CELL, start=at(23, 0), end=at(24, 0), by="shift") == []
    (row,) = oee(cursor, section, path=CELL, start=at(23, 0), end=at(25, 0), by="shift")
    assert (row.group, row.start, row.end, _times(row)) == ("early", at(24, 6), at(24, 14), (28800, 0, 28800, 0, 28800))
    cursor.close()


# `current` (the KPI tick, /api/mes/current) after a shift corrected to end earlier: line1 "early" 06-14 re-sent
#   as 06-12; the cell produces from 06:00. At 11:00 the shift runs: "early", window 06:00-11:00 (18000 s);
#   at 13:00 no shift runs (before: the replaced 06-14 version did): the last kpi_window_h (8 h) hours,
#   05:00-13:00, 25200 s of them with data
def test_current_takes_a_corrected_shift_s_latest_version(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section, now=at(24, 13))
    feeder = case.feeder
    _shift(feeder, LINE, "early", at(24, 6), at(24, 14))
    feeder.states(CELL, [(at(24, 6), 10000)])
    _shift(feeder, LINE, "early", at(24, 6), at(24, 12), sent=at(24, 5))
    cursor = case.reader()
    for now, shift, begin, seconds in ((at(24, 11), "early", at(24, 6), 18000), (at(24, 13), None, at(24, 5), 25200)):
        rows = {r.path: r for r in current(cursor, section, now=now)}
        assert [(p, r.shift_id, r.oee.start, r.oee.end, r.oee.time_s) for p, r in sorted(rows.items())] == [
            (LINE, shift, begin, now, seconds), (CELL, shift, begin, now, seconds),
        ], now  # fmt: skip
    cursor.close()


# One shift_id at the site and at line1:
#   "early": site 06-14 and line 06-14 (the same hours: one occurrence, one row, not the same numbers twice)
#   "late": site 14-22 and line 14-23 (two rows, told apart by their end; the shorter first, in every mode)
#   the cell produces from 05:00; counts 10:00 100, 22:30 30; ideal 2.0 s
#   early [06, 14): 28800 s, 100 units; late [14, 22): 28800 s, 0 units; late [14, 23): 32400 s, 30 units
#   query 08-12 with the site's early 06-14 and the line's early 07-15: both are [08, 12) there: one row, 14400 s
def test_shifts_of_one_id_at_two_levels_give_a_row_per_distinct_span_in_a_fixed_order(
    rig: Callable[..., Rig],
) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    for path in ("acme/dallas", LINE):
        _shift(feeder, path, "early", at(24, 6), at(24, 14))
    _shift(feeder, "acme/dallas", "late", at(24, 14), at(24, 22))
    _shift(feeder, LINE, "late", at(24, 14), at(24, 23))
    _shift(feeder, "acme/dallas", "mid", at(25, 6), at(25, 14))
    _shift(feeder, LINE, "mid", at(25, 7), at(25, 15))
    feeder.states(CELL, [(at(24, 5), 10000)])
    for when, total in ((at(24, 10), 100), (at(24, 22, 30), 30)):
        assert feeder.send(CELL, "production_count", when, total=total).status == "stored"
    cursor = case.reader()
    rows = oee(cursor, section, path=CELL, start=at(24, 0), end=at(25, 0), by="shift")
    assert [(r.group, r.start, r.end, r.time_s, r.total) for r in rows] == [
        ("early", at(24, 6), at(24, 14), 28800, 100),
        ("late", at(24, 14), at(24, 22), 28800, 0),
        ("late", at(24, 14), at(24, 23), 32400, 30),
    ]
    window = {"start": ["2026-11-25T08:00:00Z"], "end": ["2026-11-25T12:00:00Z"]}
    (mid,) = _view(cursor, section, "oee", {"path": [CELL], "by": ["shift"], **window}, now=at(25, 12))
    assert (mid["group"], mid["start"], mid["end"], mid["time_s"]) == (
        "mid", "2026-11-25T08:00:00+00:00", "2026-11-25T12:00:00+00:00", 14400,
    )  # fmt: skip
    cursor.close()


# An output-only line (cases, then pallets) whose output cell is not configured: the default output is the
# line's last cell with counts (the palletizer), as the OEE and scrap views take it, in every view:
#   product PAL 240 s a pallet; PAL-1 05:00-06:00, PAL-2 from 06:00; the case packer's own ideal 10 s a case
#   case-packer 05:30 120 / 10 scrapped (PAL-1), 06:30 120 / 10 (PAL-2); palletizer 05:50 3 / 1 (PAL-1)
#   orders: PAL-1 good 2 scrap 1; PAL-2 good 0 scrap 0 (before: 110 / 10, cases as pallets, 2750 % complete)
#   OEE by order: PAL-1 3 / 2, PAL-2 0 / 0; the case packer as a cell, 05-07, producing: 240 cases x 10 s / 7200 s
#   (before: the pallet's 240 s a case, P = 8.0)
def test_an_output_only_line_without_a_configured_output_counts_pallets_everywhere(rig: Callable[..., Rig]) -> None:
    section = MesSection(output_only_lines=[PACKAGING], ideal_cycle_time_s={PACKER: 10.0})
    case = rig(section)
    feeder = case.feeder
    assert feeder.send(PACKAGING, "product_type", at(24, 1), product_id="PAL", ideal_cycle_time_s=240.0).status == (
        "stored"
    )
    _two_orders(feeder, PACKAGING, ("PAL-1", "PAL-2"), "PAL", 4)
    for cell in (PACKER, PALLETIZER):
        feeder.states(cell, [(at(24, 5), 10000)])
    for path, when, total, scrap in (
        (PACKER, at(24, 5, 30), 120, 10), (PALLETIZER, at(24, 5, 50), 3, 1), (PACKER, at(24, 6, 30), 120, 10),
    ):  # fmt: skip
        assert feeder.send(path, "production_count", when, total=total, scrap=scrap).status == "stored"
    cursor = case.reader()
    orders = _view(cursor, section, "orders", {"line": [PACKAGING]})
    assert [(o["order_id"], o["good"], o["scrap"], o["percent_complete"]) for o in orders] == [
        ("PAL-1", 2, 1, 50.0), ("PAL-2", 0, 0, 0.0),
    ]  # fmt: skip
    by_order = oee(cursor, section, path=PACKAGING, start=at(24, 5), end=at(24, 7), by="order")
    assert [(r.group, r.total, r.good) for r in by_order] == [("PAL-1", 3, 2), ("PAL-2", 0, 0)]
    window = {"start": ["2026-11-24T05:00:00Z"], "end": ["2026-11-24T07:00:00Z"]}
    scrapped = _view(cursor, section, "scrap", {"path": [PACKAGING], "by": ["order"], **window})
    assert [(r["group"], r["total"], r["good"]) for r in scrapped] == [("PAL-1", 3, 2)]
    (packer,) = oee(cursor, section, path=PACKER, start=at(24, 5), end=at(24, 7), by="cell")
    assert (packer.total, packer.actual_production_time_s, packer.ideal_cycle_time_s) == (240, 7200, 10.0)
    assert packer.performance == 240 * 10 / 7200
    cursor.close()


# An ordinary line without a configured output: an order counted so far only at the filler has no good units
# out of the line (the labeler, the line's last counting cell by path, counted none of it), as OEE by order says:
#   A 05:00-06:00: filler 100 / 2, labeler 98 / 1; B from 06:00: filler 50 / 5
#   orders: A good 97 scrap 3; B good 0 scrap 5 (scrap anywhere on the line; before: good 45, the filler's)
def test_an_order_counted_only_upstream_has_no_good_units_yet(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    filler, labeler = f"{LINE}/filler", f"{LINE}/labeler"
    _two_orders(feeder, LINE, ("A", "B"), "X", 100)
    for path, when, total, scrap in (
        (filler, at(24, 5, 20), 100, 2), (labeler, at(24, 5, 40), 98, 1), (filler, at(24, 6, 20), 50, 5),
    ):  # fmt: skip
        assert feeder.send(path, "production_count", when, total=total, scrap=scrap).status == "stored"
    cursor = case.reader()
    orders = _view(cursor, section, "orders", {"line": [LINE]})
    assert [(o["order_id"], o["good"], o["scrap"]) for o in orders] == [("A", 97, 3), ("B", 0, 5)]
    by_order = oee(cursor, section, path=LINE, start=at(24, 5), end=at(24, 7), by="order")
    assert [(r.group, r.good, r.scrap) for r in by_order] == [("A", 97, 3), ("B", 0, 5)]
    cursor.close()
