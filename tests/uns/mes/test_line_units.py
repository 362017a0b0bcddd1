"""A line whose cells count different units (cases, then pallets) takes its units from the output cell alone."""

from __future__ import annotations

import pytest

from model.config import MesSection
from tests.uns.mes.mes_events import Feeder, at
from uns.mes.oee import oee
from uns.store.database import Database

LINE = "acme/dallas/packaging/line3"
PACKER, PALLETIZER = f"{LINE}/case-packer", f"{LINE}/palletizer"


def _line(db: Database, section: MesSection) -> tuple[int, int, float | None]:
    feeder = Feeder(db, section)
    for cell in (PACKER, PALLETIZER):
        feeder.states(cell, [(at(24, 6), 10000)])
    feeder.send(PACKER, "production_count", at(24, 7), total=120, scrap=10)  # cases, 10 scrapped
    feeder.send(PALLETIZER, "production_count", at(24, 7, 30), total=2, scrap=0)  # pallets
    (row,) = oee(db.connection, section, path=LINE, start=at(24, 6), end=at(24, 8), by="line")
    return row.total, row.scrap, row.quality


def test_upstream_scrap_counts_into_a_single_unit_line(db: Database) -> None:
    section = MesSection(output_cells={LINE: PALLETIZER}, ideal_cycle_time_s={LINE: 60.0})
    total, scrap, quality = _line(db, section)
    assert (total, scrap) == (12, 10)  # every unit made somewhere was made
    assert quality == pytest.approx(2 / 12)


def test_a_mixed_unit_line_counts_its_output_alone(db: Database) -> None:
    section = MesSection(output_cells={LINE: PALLETIZER}, ideal_cycle_time_s={LINE: 60.0}, output_only_lines=[LINE])
    assert _line(db, section) == (2, 0, 1.0)  # cases are not pallets


def test_the_product_paces_only_the_output_cell_of_a_mixed_unit_line(db: Database) -> None:
    # the order's product is a pallet (240 s each); the case packer counts cases (4 s each)
    section = MesSection(
        output_cells={LINE: PALLETIZER},
        ideal_cycle_time_s={PACKER: 4.0, PALLETIZER: 300.0},
        output_only_lines=[LINE],
    )
    feeder = Feeder(db, section)
    feeder.send(LINE, "product_type", at(24, 5), product_id="PAL", ideal_cycle_time_s=240.0)
    feeder.send(LINE, "work_order", at(24, 5), order_id="WO-1", action="release", product_id="PAL", quantity=10)
    feeder.send(LINE, "work_order", at(24, 6), order_id="WO-1", action="start")
    for cell in (PACKER, PALLETIZER):
        feeder.states(cell, [(at(24, 6), 10000)])
    feeder.send(PACKER, "production_count", at(24, 6, 30), total=900)  # cases in the hour
    feeder.send(PALLETIZER, "production_count", at(24, 6, 45), total=12)  # pallets in the hour
    rows = oee(db.connection, section, path=LINE, start=at(24, 6), end=at(24, 7), by="cell")
    by_cell = {row.path: row for row in rows}
    assert by_cell[PACKER].performance == pytest.approx(900 * 4.0 / 3600)  # its own cycle, not the pallet's
    assert by_cell[PALLETIZER].performance == pytest.approx(12 * 240.0 / 3600)  # the product's
    (line,) = oee(db.connection, section, path=LINE, start=at(24, 6), end=at(24, 7), by="line")
    assert line.performance == pytest.approx(12 * 240.0 / 3600)


def test_a_cell_without_a_counter_has_unknown_performance_not_zero(db: Database) -> None:
    """A rinser publishes states but no counts: its availability is known, its performance is not."""
    rinser = f"{LINE}/rinser"
    section = MesSection(output_cells={LINE: PALLETIZER}, ideal_cycle_time_s={LINE: 60.0})
    feeder = Feeder(db, section)
    for cell in (rinser, PACKER, PALLETIZER):
        feeder.states(cell, [(at(24, 6), 10000), (at(24, 6, 30), 180000), (at(24, 6, 45), 10000)])
    feeder.send(PALLETIZER, "production_count", at(24, 5), total=1)  # it counts, just not in the window
    by_cell = {r.path: r for r in oee(db.connection, section, path=LINE, start=at(24, 6), end=at(24, 7), by="cell")}
    assert by_cell[rinser].availability == pytest.approx(0.75)
    assert (by_cell[rinser].performance, by_cell[rinser].oee) == (None, None)
    assert by_cell[PALLETIZER].performance == 0.0  # a counter that counted nothing for 45 min is a loss
    assert by_cell[PALLETIZER].availability == pytest.approx(0.75)
    (alone,) = oee(db.connection, section, path=rinser, start=at(24, 6), end=at(24, 7), by="cell")
    assert alone.performance is None  # asked for alone, the same
