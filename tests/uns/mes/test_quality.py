"""Scrap rate, defect Pareto and SPC over a real DuckDB file filled with plain SQL."""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest

from tests.uns.mes.mes_rows import put
from uns.errors import BadArgument
from uns.mes.quality import D2, Rule, control_chart, defects, rule_violations, scrap, spc
from uns.store.database import Database

LINE = "acme/dallas/packaging/line1"
FILLER = f"{LINE}/filler"
CAPPER = f"{LINE}/capper"
OTHER = "acme/dallas/packaging/line2/filler"
T0 = datetime(2026, 11, 24, 6, tzinfo=UTC)
M = timedelta(minutes=1)


def count(
    connection: duckdb.DuckDBPyConnection, path: str, ts: datetime, total: int, lost: int, order: str | None
) -> None:
    put(connection, "mes_counts", path=path, ts=ts, total=total, scrap=lost, good=total - lost, order_id=order)


def inspect(connection: duckdb.DuckDBPyConnection, path: str, ts: datetime, **columns: object) -> None:
    columns.setdefault("characteristic", "fill_ml")
    columns.setdefault("result", "pass")
    put(connection, "mes_inspections", path=path, ts=ts, **columns)


# --- scrap -------------------------------------------------------------------------------------


@pytest.fixture
def counts(db: Database) -> None:
    c = db.connection
    count(c, FILLER, T0, 100, 5, "o1")
    count(c, FILLER, T0 + 60 * M, 200, 10, "o2")
    count(c, CAPPER, T0 + 30 * M, 90, 9, "o1")
    count(c, CAPPER, T0 + 17 * 60 * M, 50, 0, None)  # 23:00 UTC: the next day in Berlin
    count(c, OTHER, T0, 1000, 1000, "o9")  # another line
    count(c, FILLER, T0 - M, 7, 7, "o1")  # before the window


@pytest.mark.parametrize(
    ("by", "tz", "expected"),
    [
        ("cell", "UTC", [(CAPPER, 140, 131, 9), (FILLER, 300, 285, 15)]),
        # line rule: the output cell (filler sorts last) counts units, the capper adds its scrap
        ("line", "UTC", [(LINE, 309, 285, 24)]),
        ("order", "UTC", [("o1", 109, 95, 14), ("o2", 200, 190, 10), (None, 0, 0, 0)]),
        ("day", "UTC", [("2026-11-24", 309, 285, 24)]),
        ("day", "Europe/Berlin", [("2026-11-24", 309, 285, 24), ("2026-11-25", 0, 0, 0)]),
    ],
)
def test_scrap_groups_add_up(cursor, counts, by, tz, expected) -> None:
    rows = scrap(cursor, path=LINE, start=T0, end=T0 + 24 * 60 * M, by=by, tz=ZoneInfo(tz))
    assert [(r.group, r.total, r.good, r.scrap) for r in rows] == expected
    for row in rows:
        assert row.scrap_rate == (pytest.approx(row.scrap / row.total) if row.total else None)


def test_scrap_of_a_line_follows_its_output_cell(cursor, counts) -> None:
    rows = scrap(cursor, path=LINE, start=T0, end=T0 + 24 * 60 * M, by="line", output_cells={LINE: CAPPER})
    assert [(r.group, r.total, r.good, r.scrap) for r in rows] == [(LINE, 140 + 15, 131, 24)]
    by_cell_path = scrap(cursor, path=CAPPER, start=T0, end=T0 + 24 * 60 * M, by="order")
    assert [(r.group, r.total, r.good) for r in by_cell_path] == [("o1", 90, 81), (None, 50, 50)]  # a cell: own counts


def test_counts_on_the_line_path_are_the_line_units(db, cursor, counts) -> None:
    count(db.connection, LINE, T0 + 2 * 60 * M, 280, 20, "o2")
    rows = scrap(cursor, path=LINE, start=T0, end=T0 + 24 * 60 * M, by="order")
    assert [(r.group, r.total, r.good, r.scrap) for r in rows] == [("o2", 280, 260, 20)]


def test_scrap_of_one_cell_does_not_match_a_longer_sibling_id(db, cursor) -> None:
    count(db.connection, FILLER, T0, 10, 1, "o1")
    count(db.connection, FILLER + "_b", T0, 10, 5, "o1")  # 'filler_b' starts with 'filler' but is another cell
    rows = scrap(cursor, path=FILLER, start=T0, end=T0 + M)
    assert [(r.group, r.total, r.scrap, r.scrap_rate) for r in rows] == [(FILLER, 10, 1, 0.1)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"by": "shift"}, "by"),
        ({"start": T0.replace(tzinfo=None)}, "start"),
        ({"end": T0}, "end"),
        ({"path": "/"}, "path"),
    ],
)
def test_scrap_refuses_bad_arguments(cursor, kwargs, field) -> None:
    arguments: dict[str, object] = {"path": LINE, "start": T0, "end": T0 + M} | kwargs
    with pytest.raises(BadArgument) as caught:
        scrap(cursor, **arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


# --- defects -----------------------------------------------------------------------------------


def test_defect_pareto_orders_counts_shares_and_severity(db, cursor) -> None:
    c = db.connection
    failed = [
        ("leak", "minor"),
        ("leak", "major"),
        ("leak", None),
        ("label", "critical"),
        ("label", "minor"),
        (None, None),
    ]
    for i, (kind, severity) in enumerate(failed):
        inspect(c, FILLER if i % 2 else CAPPER, T0 + i * M, result="fail", defect_type=kind, severity=severity)
    inspect(c, FILLER, T0, result="pass", defect_type="leak")  # passed: not a defect
    inspect(c, OTHER, T0, result="fail", defect_type="label")  # another line
    inspect(c, FILLER, T0 + 60 * M, result="fail", defect_type="label")  # after the window
    rows = defects(cursor, path=LINE, start=T0, end=T0 + 60 * M)
    assert [(r.defect_type, r.count, r.worst_severity) for r in rows] == [
        ("leak", 3, "major"),
        ("label", 2, "critical"),
        ("unspecified", 1, None),
    ]
    assert [r.share for r in rows] == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    assert [r.cumulative for r in rows] == pytest.approx([3 / 6, 5 / 6, 1.0])


def test_defect_pareto_of_a_clean_range_is_empty(cursor) -> None:
    assert defects(cursor, path=LINE, start=T0, end=T0 + M) == []


# --- SPC: rules (pure) -------------------------------------------------------------------------

ALTERNATING = [0.5, -0.5] * 7
STRATIFIED = [0.1, 0.2, -0.1, -0.2] * 3 + [0.1, 0.2, -0.1]
MIXTURE = [1.5, -1.5] * 4


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([0.0, 3.5, -3.2], {1: (Rule.beyond_3_sigma,), 2: (Rule.beyond_3_sigma,)}),
        ([2.5, 0.0, 2.5], {2: (Rule.two_of_three_beyond_2_sigma,)}),
        ([-2.5, -2.1, 0.0], {1: (), 2: (Rule.two_of_three_beyond_2_sigma,)}),
        ([1.5, 1.5, 0.0, 1.5, 1.5], {4: (Rule.four_of_five_beyond_1_sigma,)}),
        ([0.5] * 8, {7: (Rule.eight_on_one_side,)}),
        ([-0.5] * 9, {7: (Rule.eight_on_one_side,), 8: (Rule.eight_on_one_side,)}),
        ([-0.5, -0.3, -0.1, 0.1, 0.3, 0.5], {5: (Rule.six_trending,)}),
        ([0.5, 0.3, 0.1, -0.1, -0.3, -0.5, -0.4], {5: (Rule.six_trending,)}),
        (ALTERNATING, {13: (Rule.fourteen_alternating,)}),
        (STRATIFIED, {14: (Rule.fifteen_within_1_sigma,)}),
        (MIXTURE, {7: (Rule.eight_beyond_1_sigma,)}),
        ([0.0, 1.0, -1.0, 0.5], {}),
    ],
)
def test_each_rule_flags_the_point_that_completes_it(points, expected) -> None:
    flagged = rule_violations(points, center=0.0, sigma=1.0)
    assert len(flagged) == len(points)
    assert {i: hits for i, hits in enumerate(flagged) if hits} == {i: h for i, h in expected.items() if h}


def test_zero_sigma_judges_only_sides_and_trends() -> None:
    flagged = rule_violations([5.0] * 8, center=0.0, sigma=0.0)
    assert flagged[-1] == (Rule.eight_on_one_side,)
    assert all(not hits for hits in flagged[:-1])


# --- SPC: statistics (pure, checked against the statistics module) ----------------------------

VALUES = [10.2, 9.8, 10.1, 10.4, 9.9, 10.0, 10.3, 9.7, 10.2, 10.1, 9.9, 10.5, 10.0]


def test_individuals_chart_matches_hand_computation() -> None:
    chart = control_chart(VALUES, lower_spec=9.0, upper_spec=11.5)
    mean = statistics.fmean(VALUES)
    moving = [abs(b - a) for a, b in itertools.pairwise(VALUES)]
    sigma = statistics.fmean(moving) / 1.128
    assert chart.mean == pytest.approx(mean)
    assert chart.sigma == pytest.approx(sigma)
    assert (chart.lcl, chart.ucl) == pytest.approx((mean - 3 * sigma, mean + 3 * sigma))
    assert chart.range_center == pytest.approx(statistics.fmean(moving))
    assert chart.range_ucl == pytest.approx(3.267 * statistics.fmean(moving), rel=1e-3)  # D4(2) from the table
    assert chart.range_lcl == 0.0
    assert chart.cp == pytest.approx(2.5 / (6 * sigma))
    assert chart.cpk == pytest.approx(min(11.5 - mean, mean - 9.0) / (3 * sigma))
    assert chart.ranges[0] is None
    assert chart.ranges[1:] == pytest.approx(tuple(moving))
    assert chart.points == tuple(VALUES)
    assert chart.dropped == 0


def test_xbar_r_chart_matches_hand_computation() -> None:
    chart = control_chart(VALUES, subgroup_size=3, upper_spec=11.0)
    groups = [VALUES[i : i + 3] for i in range(0, 12, 3)]  # the 13th value fills no subgroup
    means = [statistics.fmean(g) for g in groups]
    ranges = [max(g) - min(g) for g in groups]
    grand, r_bar = statistics.fmean(means), statistics.fmean(ranges)
    sigma = r_bar / 1.693
    assert chart.dropped == 1
    assert chart.points == pytest.approx(tuple(means))
    assert chart.mean == pytest.approx(grand)
    assert chart.sigma == pytest.approx(sigma)
    assert chart.ucl == pytest.approx(grand + 1.023 * r_bar, rel=1e-3)  # A2(3) from the table
    assert chart.lcl == pytest.approx(grand - 1.023 * r_bar, rel=1e-3)
    assert chart.range_ucl == pytest.approx(2.574 * r_bar, rel=1e-3)  # D4(3)
    assert chart.range_lcl == 0.0  # D3(3) = 0
    assert chart.cp is None  # one-sided spec
    assert chart.cpk == pytest.approx((11.0 - grand) / (3 * sigma))


def test_range_chart_lower_limit_is_positive_from_seven_on() -> None:
    chart = control_chart([float(i % 7) for i in range(14)], subgroup_size=7)
    assert chart.range_lcl == pytest.approx(0.076 * 6.0, rel=2e-2)  # D3(7) = 0.076, R̄ = 6
    assert chart.sigma == pytest.approx(6.0 / D2[7])


@pytest.mark.parametrize(("values", "size"), [([1.0], 11), ([1.0], 0), ([], 1), ([1.0, 2.0], 3)])
def test_control_chart_refuses_bad_input(values, size) -> None:
    with pytest.raises(BadArgument):
        control_chart(values, subgroup_size=size)


def test_a_single_value_has_no_sigma() -> None:
    chart = control_chart([4.0])
    assert (chart.mean, chart.sigma, chart.ucl, chart.cp) == (4.0, None, None, None)


# --- SPC: the view over the table --------------------------------------------------------------


def test_spc_view_charts_one_characteristic_at_a_path(db, cursor) -> None:
    c = db.connection
    stable = [10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.1, 9.9, 10.0, 10.1, 9.9, 10.0]
    values = [*stable, 11.0]
    for i, value in enumerate(values):
        limits = {"lower_limit": 9.0, "upper_limit": 11.0} if i < 5 else {"upper_limit": 10.8}
        inspect(c, FILLER, T0 + i * M, value=value, **limits)
    inspect(c, FILLER, T0 + 3 * M, characteristic="torque", value=99.0)  # another characteristic
    inspect(c, OTHER, T0 + 3 * M, value=50.0)  # another line
    inspect(c, FILLER, T0 + 4 * M, result="fail", defect_type="leak")  # attribute: no value
    chart = spc(cursor, characteristic="fill_ml", path=LINE, start=T0, end=T0 + 60 * M)
    mean = statistics.fmean(values)
    sigma = statistics.fmean([abs(b - a) for a, b in itertools.pairwise(values)]) / 1.128
    assert (chart.chart, chart.count, chart.subgroup_size) == ("I-MR", 13, 1)
    assert chart.mean == pytest.approx(mean)
    assert chart.sigma == pytest.approx(sigma)
    assert (chart.lower_spec, chart.upper_spec) == (9.0, 10.8)  # the latest given of each
    assert chart.cp == pytest.approx(1.8 / (6 * sigma))
    assert chart.cpk == pytest.approx(min(10.8 - mean, mean - 9.0) / (3 * sigma))
    assert [p.ts for p in chart.points] == [T0 + i * M for i in range(13)]
    assert [p.value for p in chart.points] == values
    assert abs(11.0 - mean) > 3 * sigma  # the planted outlier is beyond 3 sigma by hand
    assert chart.points[-1].violations[0] is Rule.beyond_3_sigma
    assert all(Rule.beyond_3_sigma not in p.violations for p in chart.points[:-1])


def test_spc_subgroups_stamp_each_point_with_its_last_measurement(db, cursor) -> None:
    for i, value in enumerate(VALUES):
        inspect(db.connection, CAPPER, T0 + i * M, value=value)
    chart = spc(cursor, characteristic="fill_ml", start=T0, end=T0 + 60 * M, subgroup_size=4, tz=ZoneInfo("Asia/Tokyo"))
    assert chart.chart == "Xbar-R"
    assert (len(chart.points), chart.dropped) == (3, 1)
    assert [p.ts for p in chart.points] == [T0 + 3 * M, T0 + 7 * M, T0 + 11 * M]
    assert chart.points[0].ts.utcoffset() == timedelta(hours=9)
    assert chart.points[1].value == pytest.approx(statistics.fmean(VALUES[4:8]))
    assert chart.points[1].range == pytest.approx(max(VALUES[4:8]) - min(VALUES[4:8]))
    assert chart.sigma is not None
    assert math.isclose(
        chart.sigma, statistics.fmean([max(VALUES[i : i + 4]) - min(VALUES[i : i + 4]) for i in (0, 4, 8)]) / 2.059
    )


def test_spc_without_measurements_names_the_characteristic(cursor) -> None:
    with pytest.raises(BadArgument, match="fill_ml") as caught:
        spc(cursor, characteristic="fill_ml", path=FILLER, start=T0, end=T0 + M)
    assert caught.value.field == "characteristic"
