"""A line's output (``uns.mes.line_output``): which paths' counts are a line's units, the one rule of three views."""

from __future__ import annotations

import pytest

from tests.exports import assert_all_is_honest
from uns.mes.line_output import output_cell, unit_paths

LINE = "acme/dallas/packaging/line3"
PACKER, PALLETIZER, WRAPPER = f"{LINE}/case-packer", f"{LINE}/palletizer", f"{LINE}/wrapper"
OTHER = "acme/dallas/packaging/line30/zz"  # another line whose path starts with this line's


def test_exports() -> None:
    assert_all_is_honest("uns.mes.line_output", in_order=True)


@pytest.mark.parametrize(
    ("counting", "configured", "output_only", "expected"),
    [
        # the last cell by path that ever counted is the output; the others add their scrap
        ({PACKER, PALLETIZER, OTHER}, {}, False, {PACKER: False, PALLETIZER: True}),
        # configured: that cell, even one sorting first; one that never counted leaves only scrap
        ({PACKER, PALLETIZER}, {LINE: PACKER}, False, {PACKER: True, PALLETIZER: False}),
        ({PACKER, PALLETIZER}, {LINE: WRAPPER}, False, {PACKER: False, PALLETIZER: False}),
        # cells counting different units: the output alone
        ({PACKER, PALLETIZER}, {}, True, {PALLETIZER: True}),
        ({PACKER, PALLETIZER}, {LINE: WRAPPER}, True, {}),
        # the line's own counts win over every cell's
        ({LINE, PACKER, PALLETIZER}, {LINE: PACKER}, False, {LINE: True}),
        ({OTHER}, {}, False, {}),
    ],
)
def test_unit_paths(
    counting: set[str], configured: dict[str, str], output_only: bool, expected: dict[str, bool]
) -> None:
    assert unit_paths(LINE, counting, configured, output_only=output_only) == expected


@pytest.mark.parametrize(
    ("counting", "configured", "expected"),
    [
        ({PACKER, PALLETIZER, OTHER}, {}, PALLETIZER),
        ({PACKER, PALLETIZER}, {LINE: PACKER}, PACKER),
        ((), {LINE: WRAPPER}, WRAPPER),  # configured: the paths that counted are not needed
        ({LINE, PACKER}, {}, PACKER),  # the line path is not a cell
        ({OTHER}, {}, None),
    ],
)
def test_output_cell(counting: set[str], configured: dict[str, str], expected: str | None) -> None:
    assert output_cell(LINE, counting, configured) == expected
