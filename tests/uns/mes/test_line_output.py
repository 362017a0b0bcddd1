"""A line's output (``uns.mes.line_output``): which paths' counts are a line's units, the one rule of three views."""

from __future__ import annotations

import duckdb
import pytest

from tests.exports import assert_all_is_honest
from tests.uns.mes.mes_events import Feeder, at
from uns.mes.line_output import LineOutput, is_stray_count, line_output, unit_paths
from uns.mes.orders import order_progress
from uns.mes.quality import scrap
from uns.mes.resources import material
from uns.store.database import Database

LINE = "acme/dallas/packaging/line3"
PACKER, PALLETIZER, WRAPPER = f"{LINE}/case-packer", f"{LINE}/palletizer", f"{LINE}/wrapper"
OTHER = "acme/dallas/packaging/line30/zz"  # another line whose path starts with this line's


def test_exports() -> None:
    assert_all_is_honest("uns.mes.line_output", in_order=True)


PLANT = {LINE: PALLETIZER}  # the hub's default (the plant file's last cell), apart from the settings


@pytest.mark.parametrize(
    ("counting", "configured", "plant", "output_only", "expected"),
    [
        # 1. set in the settings: that cell, even one sorting first; one that never counted leaves only scrap
        ({PACKER, PALLETIZER}, {LINE: PACKER}, {}, False, {PACKER: True, PALLETIZER: False}),
        ({PACKER, PALLETIZER}, {LINE: PACKER}, PLANT, False, {PACKER: True, PALLETIZER: False}),
        ({PACKER, PALLETIZER}, {LINE: WRAPPER}, {}, False, {PACKER: False, PALLETIZER: False}),
        ({PACKER, PALLETIZER}, {LINE: WRAPPER}, {}, True, {}),
        #    it wins over the line's own counts: those are stray, no unit of the line
        ({LINE, PACKER, PALLETIZER}, {LINE: PACKER}, PLANT, False, {PACKER: True, PALLETIZER: False}),
        ({LINE, PACKER, PALLETIZER}, {LINE: PACKER}, PLANT, True, {PACKER: True}),
        #    the line set as its own output: its own counts alone (no cell's scrap added), counted yet or not
        ({LINE, PACKER, PALLETIZER}, {LINE: LINE}, PLANT, False, {LINE: True}),
        ((), {LINE: LINE}, {}, False, {LINE: True}),
        # 2. no setting, the line path counted: its own counts, over the plant's default (cells counting or not)
        ({LINE}, {}, PLANT, False, {LINE: True}),
        ({LINE, PACKER, PALLETIZER}, {}, PLANT, False, {LINE: True}),
        ({LINE, PACKER, PALLETIZER}, {}, {}, True, {LINE: True}),
        # 3. else the plant's default, even one sorting first or that never counted
        ({PACKER, PALLETIZER, OTHER}, {}, {LINE: PACKER}, False, {PACKER: True, PALLETIZER: False}),
        ({PACKER, PALLETIZER}, {}, {LINE: WRAPPER}, True, {}),
        # 4. else the last cell by path that ever counted; cells counting different units: the output alone
        ({PACKER, PALLETIZER, OTHER}, {}, {}, False, {PACKER: False, PALLETIZER: True}),
        ({PACKER, PALLETIZER}, {}, {}, True, {PALLETIZER: True}),
        ({OTHER}, {}, PLANT, False, {}),  # nothing of the line counted: no units
    ],
)
def test_unit_paths(
    counting: set[str], configured: dict[str, str], plant: dict[str, str], output_only: bool, expected: dict[str, bool]
) -> None:
    assert unit_paths(LINE, counting, configured, output_only=output_only, plant_outputs=plant) == expected


@pytest.mark.parametrize(
    ("counting", "configured", "plant", "expected"),
    [
        ({LINE, PACKER}, {LINE: PACKER}, PLANT, LineOutput(PACKER, "settings")),  # 1
        ((), {LINE: WRAPPER}, {}, LineOutput(WRAPPER, "settings")),  # the paths that counted are not needed
        ({LINE, PACKER}, {LINE: LINE}, PLANT, LineOutput(LINE, "settings")),
        ({LINE, PACKER}, {}, PLANT, LineOutput(LINE, "line")),  # 2
        ({PACKER}, {}, PLANT, LineOutput(PALLETIZER, "plant")),  # 3
        ((), {}, PLANT, LineOutput(PALLETIZER, "plant")),
        ({PACKER, PALLETIZER, OTHER}, {}, {}, LineOutput(PALLETIZER, "counts")),  # 4
        ({OTHER}, {}, {}, None),
    ],
)
def test_line_output_takes_the_setting_then_the_line_s_own_counts_then_the_plant_then_the_counts(
    counting: set[str], configured: dict[str, str], plant: dict[str, str], expected: LineOutput | None
) -> None:
    assert line_output(LINE, counting, configured, plant) == expected


@pytest.mark.parametrize(
    ("path", "configured", "expected"),
    [
        (LINE, {LINE: PACKER}, True),  # the line's output is a cell: a count on the line is stray
        (LINE, {LINE: LINE}, False),  # the line is its own output
        (LINE, {}, False),  # no output configured: the line's own counts are its units (a plant default is no setting)
        (PACKER, {LINE: PALLETIZER}, False),  # a cell's counts are never stray (its scrap is the line's)
        (OTHER, {LINE: PACKER}, False),
    ],
)
def test_is_stray_count(path: str, configured: dict[str, str], expected: bool) -> None:
    assert is_stray_count(path, configured) is expected


def test_an_order_counted_at_two_lines_has_the_same_units_in_every_view(
    db: Database, cursor: duckdb.DuckDBPyConnection
) -> None:
    """o1, released and started at line1, also counted at line2 (it named the order): its good units and scrap are
    each line's output rule summed over both lines, in the orders, material and scrap views alike.

    line1 (output the filler, its last cell by path): filler 50 (scrap 2) + the capper's scrap 1: good 48, scrap 3;
    line2 (its one cell, the filler): 30 (scrap 3): good 27, scrap 3; o1: good 48 + 27 = 75, scrap 3 + 3 = 6."""
    line1, line2 = "acme/dallas/bottling/line1", "acme/dallas/bottling/line2"
    feeder = Feeder(db)
    for action in ("release", "start"):
        body = {"product_id": "cola", "quantity": 100} if action == "release" else {}
        assert feeder.send(line1, "work_order", at(24, 6), order_id="o1", action=action, **body).status == "stored"
    for path, total, scrapped in ((f"{line1}/filler", 50, 2), (f"{line1}/capper", 45, 1), (f"{line2}/filler", 30, 3)):
        outcome = feeder.send(path, "production_count", at(24, 7), total=total, scrap=scrapped, order_id="o1")
        assert outcome.status == "stored"
    (progress,) = order_progress(cursor, now=at(24, 9))
    assert (progress.line, progress.good, progress.scrap) == (line1, 75, 6)
    assert material(cursor, order_id="o1").good_units == 75
    (row,) = scrap(cursor, path="acme", start=at(24, 0), end=at(25, 0), by="order")
    assert (row.group, row.good, row.scrap) == ("o1", 75, 6)
