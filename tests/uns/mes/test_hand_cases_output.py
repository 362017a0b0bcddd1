"""A line's output (docs/mes.md, ``uns.mes.line_output``), computed by hand as an integrator checks a vendor.

Each case writes down its events and works out the figures in a comment (ISO 22400-2 as in
``test_hand_cases``), then asserts the OEE, orders, scrap and material views give exactly those numbers,
through the interval SQL and through the per-hour facts and memo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import orjson
import pytest

from hub.app import mes_section
from model.config import MesSection, Settings
from tests.uns.mes import test_hand_cases as first_round
from tests.uns.mes.mes_events import Feeder, at
from tests.uns.mes.test_hand_cases import Rig, _ratios, _times
from uns.mes.oee import OeeRow, oee
from uns.mes.resources import material
from uns.mes.views_api import run_view
from uns.query.args import document_bytes
from uns.settings import load_plant

LINE = "acme/dallas/bottling/line1"
FILLER, CAPPER = f"{LINE}/filler", f"{LINE}/capper"
WINDOW = {"start": "2026-11-24T06:00:00Z", "end": "2026-11-24T07:00:00Z"}
"""06:00-07:00, the views' ``start`` and ``end``."""

# the first round's fixture: ``rig`` (each case through the interval SQL and through the facts and memo) on the
# MES tests' ``db``, a copy of one migrated file
rig = first_round.rig


def _document(cursor: duckdb.DuckDBPyConnection, section: MesSection, view: str, **params: str) -> dict[str, Any]:
    """A view's document as ``GET /api/mes/<view>`` answers it (at 07:00)."""
    args = {key: [value] for key, value in params.items()}
    document: dict[str, Any] = orjson.loads(document_bytes(run_view(cursor, section, view, args, now=at(24, 7))))
    return document


def _view(cursor: duckdb.DuckDBPyConnection, section: MesSection, view: str, **params: str) -> list[dict[str, Any]]:
    """A view's rows as ``GET /api/mes/<view>`` answers them (at 07:00)."""
    rows: list[dict[str, Any]] = _document(cursor, section, view, **params)["rows"]
    return rows


def _order_running(feeder: Feeder, cells: tuple[str, ...]) -> None:
    """Product P1 (2.0 s), order O1 (1000, a cap per unit) released and started at 06:00 on line1, ``cells``
    producing from 06:00 (cases O1, O2, O4)."""
    assert feeder.send(LINE, "product_type", at(24, 1), product_id="P1", ideal_cycle_time_s=2.0).status == "stored"
    release = {"product_id": "P1", "quantity": 1000, "bom": [{"material_id": "cap", "quantity_per_unit": 1.0}]}
    assert feeder.send(LINE, "work_order", at(24, 2), order_id="O1", action="release", **release).status == "stored"
    assert feeder.send(LINE, "work_order", at(24, 6), order_id="O1", action="start").status == "stored"
    for cell in cells:
        feeder.states(cell, [(at(24, 6), 10000)])


def _line_run(rig: Callable[..., Rig], section: MesSection) -> duckdb.DuckDBPyConnection:
    """Case O1's and O2's events under ``section``, and a read cursor: order O1 running, filler and capper
    producing from 06:00, filler 500 / 10 at 06:30, capper 480 / 4 at 06:40, then 300 / 0 on the line path itself
    at 06:50."""
    case = rig(section)
    feeder = case.feeder
    _order_running(feeder, (FILLER, CAPPER))
    assert feeder.send(FILLER, "production_count", at(24, 6, 30), total=500, scrap=10).status == "stored"
    assert feeder.send(CAPPER, "production_count", at(24, 6, 40), total=480, scrap=4).status == "stored"
    assert feeder.send(LINE, "production_count", at(24, 6, 50), total=300, scrap=0).status == "stored"
    return case.reader()


def _line_oee(cursor: duckdb.DuckDBPyConnection, section: MesSection) -> OeeRow:
    """Line1's row of the OEE view by line, 06:00-07:00, under ``section``'s outputs."""
    (row,) = oee(cursor, section, path=LINE, start=at(24, 6), end=at(24, 7), by="line",
                 output_cells=section.output_cells, plant_outputs=section.plant_outputs)  # fmt: skip
    return row


# Case O1: a stray count on the line path does not move a configured line's figures.
#   line1: filler, capper (the capper sorts first by path); mes.output_cells: line1 -> capper
#   product P1 ideal 2.0 s; order O1 released (1000, a cap per unit), started 06:00
#   states filler and capper producing from 06:00 (no line states: their union): window 3600, APT 3600
#   counts filler 500 / 10 (06:30), capper (output) 480 / 4 (06:40)
#   then a test publish on the line path itself: 300 / 0 at 06:50 (stray: the output is a cell)
#   line units = the capper's 480 + the filler's scrap 10 = 490, good 476, scrap 14, with or without the stray
#   count: A = 1, P = 490 * 2.0 / 3600, Q = 476 / 490; orders O1 good 476 scrap 14 (47.6 %);
#   scrap by line 490 / 476 / 14; material O1 good units 476
#   (before 2026-12-07 the stray count made the line's own counts its units, past ones included: 300 / 300)
def test_o1_a_stray_count_on_the_line_path_moves_no_figure_of_a_configured_line(rig: Callable[..., Rig]) -> None:
    section = MesSection(output_cells={LINE: CAPPER})
    cursor = _line_run(rig, section)
    row = _line_oee(cursor, section)
    assert (_times(row), row.total, row.good, row.scrap) == ((3600, 0, 3600, 0, 3600), 490, 476, 14)
    _ratios(row, 1.0, 490 * 2.0 / 3600, 476 / 490)
    (order,) = _view(cursor, section, "orders", line=LINE)
    assert (order["order_id"], order["good"], order["scrap"]) == ("O1", 476, 14)
    assert order["percent_complete"] == pytest.approx(47.6, rel=1e-12)
    (scrapped,) = _view(cursor, section, "scrap", path=LINE, by="line", **WINDOW)
    assert (scrapped["group"], scrapped["total"], scrapped["good"], scrapped["scrap"]) == (LINE, 490, 476, 14)
    assert material(cursor, order_id="O1", output_cells=section.output_cells).good_units == 476
    cursor.close()


# Case O2: the line as its own output (mes.output_cells: line1 -> line1, a line-level counter), the same events:
#   the line path's counts alone are the line's units, the cells' scrap is not added: 300 / 300 / 0
#   A = 1, P = 300 * 2.0 / 3600, Q = 1; orders O1 good 300 scrap 0 (30 %); material O1 good units 300
def test_o2_a_line_configured_as_its_own_output_counts_at_its_own_path(rig: Callable[..., Rig]) -> None:
    section = MesSection(output_cells={LINE: LINE})
    cursor = _line_run(rig, section)
    row = _line_oee(cursor, section)
    assert (row.total, row.good, row.scrap) == (300, 300, 0)
    _ratios(row, 1.0, 300 * 2.0 / 3600, 1.0)
    (order,) = _view(cursor, section, "orders", line=LINE)
    assert (order["order_id"], order["good"], order["scrap"]) == ("O1", 300, 0)
    assert material(cursor, order_id="O1", output_cells=section.output_cells).good_units == 300
    cursor.close()


# Case O3: the hub's default output is the plant file's last cell, not the last cell by path that counted, so a
#   cell that starts counting later moves no past figure.
#   line2 in the plant file: rinser, filler2, capper2 (the rinser sorts last by path); the hub's section
#   (hub.app.mes_section, no mes.output_cells): output capper2
#   product P2 ideal 1.0 s; order O2 started 06:00; the three cells producing from 06:00
#   counts filler2 200 / 2 (06:20), capper2 190 / 1 (06:30)
#   06:00-07:00: units 190 + the filler2's scrap 2 = 192, good 189, scrap 3; A = 1, P = 192 * 1.0 / 3600,
#     Q = 189 / 192
#   then the rinser gets a counter: 210 / 5 at 07:10. 06:00-07:00 still 192 / 189 / 3 (the output is still
#     capper2); 07:00-08:00: the rinser's scrap 5 alone: 5 / 0 / 5
#   without an output (the library's fallback, a line the plant file does not declare) the rinser would now be
#     the output of every window: 06:00-07:00 would read the filler2's and capper2's scrap alone, 3 / 0 / 3
def test_o3_a_cell_that_starts_counting_later_moves_no_past_figure_of_a_plant_line(rig: Callable[..., Rig]) -> None:
    line2 = "acme/dallas/bottling/line2"
    rinser, filler2, capper2 = f"{line2}/rinser", f"{line2}/filler2", f"{line2}/capper2"
    section = mes_section(Settings(demo=False), load_plant(None))
    assert (section.output_cells, section.plant_outputs[line2]) == ({}, capper2)  # a default, not a setting
    case = rig(section)
    feeder = case.feeder
    assert feeder.send(line2, "product_type", at(24, 1), product_id="P2", ideal_cycle_time_s=1.0).status == "stored"
    assert feeder.send(line2, "work_order", at(24, 2), order_id="O2", action="release", product_id="P2",
                       quantity=1000).status == "stored"  # fmt: skip
    assert feeder.send(line2, "work_order", at(24, 6), order_id="O2", action="start").status == "stored"
    for cell in (rinser, filler2, capper2):
        feeder.states(cell, [(at(24, 6), 10000)])
    assert feeder.send(filler2, "production_count", at(24, 6, 20), total=200, scrap=2).status == "stored"
    assert feeder.send(capper2, "production_count", at(24, 6, 30), total=190, scrap=1).status == "stored"

    def figures(start: int, defaults: dict[str, str]) -> tuple[int, int, int]:
        cursor = case.reader()
        (row,) = oee(cursor, section, path=line2, start=at(24, start), end=at(24, start + 1), by="line",
                     output_cells=section.output_cells, plant_outputs=defaults)  # fmt: skip
        if (start, defaults) == (6, section.plant_outputs):
            _ratios(row, 1.0, 192 * 1.0 / 3600, 189 / 192)
        cursor.close()
        return row.total, row.good, row.scrap

    assert figures(6, section.plant_outputs) == (192, 189, 3)
    assert feeder.send(rinser, "production_count", at(24, 7, 10), total=210, scrap=5).status == "stored"
    assert figures(6, section.plant_outputs) == (192, 189, 3)
    assert figures(7, section.plant_outputs) == (5, 0, 5)
    assert figures(6, {}) == (3, 0, 3)


# Case O4: a line-level counter on a line whose cells report only states, under the hub (the plant file declares
#   the cells; no mes.output_cells): the line's own counts are its units, over the plant file's last cell
#   (docs/mes.md, A line's output, step 2; as the contract read before 2026-12-07).
#   line1 in the plant file: filler, capper, labeler (the default output: the labeler)
#   product P1 ideal 2.0 s; order O1 released (1000, a cap per unit), started 06:00
#   states filler, capper, labeler producing from 06:00 (no line states: their union): window 3600, APT 3600
#   counts on the line path 300 / 6 at 06:50; no cell counts
#   line units = 300, good 294, scrap 6: A = 1, P = 300 * 2.0 / 3600, Q = 294 / 300; orders O1 good 294 scrap 6
#   (29.4 %); scrap by line 300 / 294 / 6; material O1 good units 294
#   (from 2026-12-07 until this case the hub's default made them stray: 0 / 0 / 0, P 0, orders 0 %)
#   then the capper gets a counter too: 280 / 3 at 06:55. No setting: the line's own counts stay its units
#   (300 / 294 / 6, the capper's scrap not added; the adapter lists the line in own_count_lines and warns);
#   pinned with mes.output_cells.line1: line1/capper the capper's 280 / 277 / 3, the line's counts stray
def test_o4_a_line_level_counter_is_the_line_s_units_without_a_setting(rig: Callable[..., Rig]) -> None:
    labeler = f"{LINE}/labeler"
    section = mes_section(Settings(demo=False), load_plant(None))
    assert (section.output_cells, section.plant_outputs[LINE]) == ({}, labeler)
    case = rig(section)
    feeder = case.feeder
    _order_running(feeder, (FILLER, CAPPER, labeler))
    assert feeder.send(LINE, "production_count", at(24, 6, 50), total=300, scrap=6).status == "stored"

    def figures(section: MesSection) -> tuple[int, int, int]:
        cursor = case.reader()
        row = _line_oee(cursor, section)
        assert _times(row) == (3600, 0, 3600, 0, 3600)
        (order,) = _view(cursor, section, "orders", line=LINE)
        (scrapped,) = _view(cursor, section, "scrap", path=LINE, by="line", **WINDOW)
        (line_row,) = _view(cursor, section, "oee", path=LINE, by="line", **WINDOW)
        good_units = _material(cursor, section)
        cursor.close()
        figures = (row.total, row.good, row.scrap)
        assert (order["good"], order["scrap"]) == figures[1:]
        assert (scrapped["total"], scrapped["good"], scrapped["scrap"]) == figures
        assert (line_row["total"], line_row["good"], line_row["scrap"]) == figures
        assert good_units == row.good
        if figures == (300, 294, 6):
            _ratios(row, 1.0, 300 * 2.0 / 3600, 294 / 300)
            assert order["percent_complete"] == pytest.approx(29.4, rel=1e-12)
        return figures

    assert figures(section) == (300, 294, 6)
    assert feeder.send(CAPPER, "production_count", at(24, 6, 55), total=280, scrap=3).status == "stored"
    assert figures(section) == (300, 294, 6)
    pinned = mes_section(Settings(demo=False, mes=MesSection(output_cells={LINE: CAPPER})), load_plant(None))
    assert figures(pinned) == (280, 277, 3)


def _material(cursor: duckdb.DuckDBPyConnection, section: MesSection) -> int:
    """O1's good units in the ``material`` view, as ``GET /api/mes/material`` answers them."""
    good: int = _document(cursor, section, "material", order_id="O1")["good_units"]
    return good
