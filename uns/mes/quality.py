"""Quality views over the MES tables: scrap rate per group, defect Pareto, and SPC control charts.

Every view is synchronous and read-only: it takes a DuckDB cursor (``Database.reading``'s) and runs
in the caller's thread. Times going in must carry a time zone; ranges are half-open
``start <= ts < end``; times coming out are in ``tz`` (UTC by default). ``path`` selects that piece
of equipment and everything below it (a line selects its cells).

The SPC arithmetic (``control_chart``, ``rule_violations``) is a pure core with no I/O.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

import duckdb

from uns.errors import BadArgument
from uns.mes.line_output import unit_paths
from uns.mes.paths import subtree_condition
from uns.query.timespec import UTC_ZONE, checked_window, instant

__all__ = [
    "D2",
    "D3",
    "ControlChart",
    "DefectRow",
    "Rule",
    "ScrapGroup",
    "ScrapRow",
    "SpcChart",
    "SpcPoint",
    "control_chart",
    "defects",
    "rule_violations",
    "scrap",
    "spc",
]

log = logging.getLogger(__name__)

ScrapGroup = Literal["cell", "line", "order", "day"]
"""How ``scrap`` groups counts."""

D2: dict[int, float] = {2: 1.128, 3: 1.693, 4: 2.059, 5: 2.326, 6: 2.534, 7: 2.704, 8: 2.847, 9: 2.970, 10: 3.078}
"""Control-chart constant d2 (mean of the relative range) by subgroup size; n=2 also serves moving ranges."""

D3: dict[int, float] = {2: 0.853, 3: 0.888, 4: 0.880, 5: 0.864, 6: 0.848, 7: 0.833, 8: 0.820, 9: 0.808, 10: 0.797}
"""Control-chart constant d3 (sigma of the relative range) by subgroup size, for the range chart limits."""

_SEVERITY_RANK = {"minor": 1, "major": 2, "critical": 3}
_UNSPECIFIED = "unspecified"


# ---------------------------------------------------------------------------------------------
# scrap rate and defect Pareto


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ScrapRow:
    """Units counted in one group and the share scrapped.

    ``group`` is the cell path, the line path, the order id (None for counts without an order) or
    the day (ISO date in the asked time zone).
    """

    group: str | None
    total: int
    good: int
    scrap: int
    scrap_rate: float | None
    """scrap / total; None when nothing was counted."""


_SCRAP_KEYS: dict[str, str] = {
    "cell": "path",
    "line": "line",
    "order": "order_id",
    "day": "CAST(timezone(?, ts) AS DATE)",
}


_COUNTING = """
SELECT DISTINCT line, path FROM mes_counts
WHERE line IN (SELECT DISTINCT line FROM mes_counts WHERE {where} AND ts >= ? AND ts < ?)
"""
"""Every path that ever counted on the lines counted at in scope: which of them are a line's units."""

# Each count's weight: a cell's own units, or (line rule) the line's output plus scrap elsewhere: the paths of
# ``unit_paths`` (whole: True is the output's whole count, False its scrap alone; no role: nothing)
_SCRAP_SQL = """
WITH scoped AS (
    SELECT * FROM mes_counts WHERE {where} AND ts >= ? AND ts < ?
), units AS (
    SELECT unnest(?::VARCHAR[]) AS path, unnest(?::BOOLEAN[]) AS whole
), weighted AS (
    SELECT s.*, CASE WHEN NOT ? OR u.whole THEN 'own' WHEN NOT u.whole THEN 'scrap' ELSE 'none' END AS role
    FROM scoped s LEFT JOIN units u ON u.path = s.path
)
SELECT {key} AS grp,
       sum(CASE role WHEN 'own' THEN total WHEN 'scrap' THEN scrap ELSE 0 END),
       sum(CASE role WHEN 'own' THEN good ELSE 0 END)
FROM weighted GROUP BY grp HAVING count(*) FILTER (role <> 'none') > 0 ORDER BY grp NULLS LAST
"""


def scrap(
    cursor: duckdb.DuckDBPyConnection,
    *,
    path: str,
    start: datetime,
    end: datetime,
    by: ScrapGroup = "cell",
    tz: ZoneInfo = UTC_ZONE,
    output_cells: Mapping[str, str] | None = None,
    output_only: Collection[str] = (),
    plant_outputs: Mapping[str, str] | None = None,
) -> list[ScrapRow]:
    """Total, good and scrapped units per group from the production counts in ``[start, end)``.

    ``by="cell"`` (or a cell ``path``) counts each cell's own units. Otherwise units follow the
    line rule of the OEE view (``uns.mes.line_output``): a line's units are its output's counts
    (the setting ``output_cells[line]``, a cell or the line itself; without one, the line path's own counts
    when it has any, else the default ``plant_outputs[line]``, else the last cell by path that ever counted)
    plus the scrap counted at its other cells, so a unit is counted once and a unit scrapped anywhere on the
    line is produced and lost; on the lines of ``output_only`` (``mes.output_only_lines``: cells counting
    different units, cases then pallets) the output cell's count alone.

    Raises:
        BadArgument: for an unknown grouping, a naive or empty time range, or an empty path.
    """
    if by not in _SCRAP_KEYS:
        raise BadArgument("by", f"must be one of {', '.join(_SCRAP_KEYS)} (got {by!r})")
    low, high = checked_window(start, end)
    where, params = subtree_condition("path", path)
    key = _SCRAP_KEYS[by]
    outputs = dict(output_cells or {})
    line_rule = by != "cell" and len(path.strip("/").split("/")) < 5
    units: dict[str, bool] = {}
    if line_rule:
        counting: dict[str, set[str]] = {}
        for line, counted in cursor.execute(_COUNTING.format(where=where), [*params, low, high]).fetchall():
            counting.setdefault(line, set()).add(counted)
        for line, paths in counting.items():
            only = line in output_only
            units.update(unit_paths(line, paths, outputs, output_only=only, plant_outputs=plant_outputs or {}))
    arguments: list[object] = [*params, low, high, list(units), list(units.values()), line_rule]
    if by == "day":
        arguments.append(tz.key)
    sql = _SCRAP_SQL.format(where=where, key=key.replace("?", "?::VARCHAR"))
    # the day key's ? comes in the final SELECT, after all other parameters
    rows = cursor.execute(sql, arguments).fetchall()
    result: list[ScrapRow] = []
    for group, total, good in rows:
        total, good = int(total), int(good)
        label = group.isoformat() if isinstance(group, date) else group
        lost = total - good
        result.append(
            ScrapRow(group=label, total=total, good=good, scrap=lost, scrap_rate=lost / total if total else None)
        )
    return result


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DefectRow:
    """One defect type in the Pareto of failed inspections, most frequent first."""

    defect_type: str
    """The inspection's defect type; ``unspecified`` when a failed inspection named none."""
    count: int
    share: float
    """count / all failed inspections in the range."""
    cumulative: float
    """Running sum of ``share`` down the Pareto (the last row is 1.0)."""
    worst_severity: str | None
    """critical > major > minor; None when no inspection of this type gave one."""


def defects(cursor: duckdb.DuckDBPyConnection, *, path: str, start: datetime, end: datetime) -> list[DefectRow]:
    """The defect Pareto: failed inspections in ``[start, end)`` by defect type, most frequent first.

    Raises:
        BadArgument: for a naive or empty time range, or an empty path.
    """
    low, high = checked_window(start, end)
    where, params = subtree_condition("path", path)
    sql = (
        f"SELECT coalesce(defect_type, '{_UNSPECIFIED}') AS kind, count(*) AS n,"  # noqa: S608 (trusted SQL)
        " max(CASE severity WHEN 'minor' THEN 1 WHEN 'major' THEN 2 WHEN 'critical' THEN 3 END)"
        f" FROM mes_inspections WHERE result = 'fail' AND {where} AND ts >= ? AND ts < ?"
        " GROUP BY kind ORDER BY n DESC, kind"
    )
    rows = cursor.execute(sql, [*params, low, high]).fetchall()
    failed = sum(int(n) for _, n, _ in rows)
    names = {rank: name for name, rank in _SEVERITY_RANK.items()}
    result: list[DefectRow] = []
    running = 0
    for kind, n, rank in rows:
        running += int(n)
        result.append(
            DefectRow(
                defect_type=kind,
                count=int(n),
                share=int(n) / failed,
                cumulative=running / failed,
                worst_severity=names.get(rank) if rank is not None else None,
            )
        )
    return result


# ---------------------------------------------------------------------------------------------
# SPC: pure core


class Rule(StrEnum):
    """Western Electric / Nelson run rules, judged on the plotted points against center and sigma."""

    beyond_3_sigma = "beyond_3_sigma"
    """One point beyond 3 sigma (Nelson 1)."""
    eight_on_one_side = "eight_on_one_side"
    """Eight points in a row on one side of the center line (Western Electric 4)."""
    six_trending = "six_trending"
    """Six points in a row steadily increasing or decreasing (Nelson 3)."""
    fourteen_alternating = "fourteen_alternating"
    """Fourteen points in a row alternating up and down (Nelson 4)."""
    two_of_three_beyond_2_sigma = "two_of_three_beyond_2_sigma"
    """Two of three points in a row beyond 2 sigma, same side (Nelson 5)."""
    four_of_five_beyond_1_sigma = "four_of_five_beyond_1_sigma"
    """Four of five points in a row beyond 1 sigma, same side (Nelson 6)."""
    fifteen_within_1_sigma = "fifteen_within_1_sigma"
    """Fifteen points in a row within 1 sigma, either side (Nelson 7: stratification)."""
    eight_beyond_1_sigma = "eight_beyond_1_sigma"
    """Eight points in a row beyond 1 sigma, either side, none within (Nelson 8: mixture)."""


def _zone_run(
    points: Sequence[float], center: float, sigma: float, *, window: int, need: int, k: float, index: int
) -> bool:
    """``need`` of the ``window`` points ending at ``index`` lie beyond ``k`` sigma on one side."""
    if index + 1 < window:
        return False
    recent = points[index + 1 - window : index + 1]
    above = sum(1 for x in recent if x > center + k * sigma)
    below = sum(1 for x in recent if x < center - k * sigma)
    return above >= need or below >= need


def rule_violations(points: Sequence[float], *, center: float, sigma: float) -> list[tuple[Rule, ...]]:
    """The run rules each point completes (the last point of the run is flagged), in Rule order.

    With ``sigma`` zero or not finite only the side rules and trends are judged.
    """
    zoned = sigma > 0 and math.isfinite(sigma)
    result: list[tuple[Rule, ...]] = []
    for i, x in enumerate(points):
        hits: list[Rule] = []
        if zoned and abs(x - center) > 3 * sigma:
            hits.append(Rule.beyond_3_sigma)
        if i >= 7:
            run = points[i - 7 : i + 1]
            if all(p > center for p in run) or all(p < center for p in run):
                hits.append(Rule.eight_on_one_side)
        if i >= 5:
            steps = [b - a for a, b in pairwise(points[i - 5 : i + 1])]
            if all(s > 0 for s in steps) or all(s < 0 for s in steps):
                hits.append(Rule.six_trending)
        if i >= 13:
            steps = [b - a for a, b in pairwise(points[i - 13 : i + 1])]
            if all(s != 0 for s in steps) and all(a * b < 0 for a, b in pairwise(steps)):
                hits.append(Rule.fourteen_alternating)
        if zoned:
            if _zone_run(points, center, sigma, window=3, need=2, k=2, index=i):
                hits.append(Rule.two_of_three_beyond_2_sigma)
            if _zone_run(points, center, sigma, window=5, need=4, k=1, index=i):
                hits.append(Rule.four_of_five_beyond_1_sigma)
            if i >= 14 and all(abs(p - center) < sigma for p in points[i - 14 : i + 1]):
                hits.append(Rule.fifteen_within_1_sigma)
            if i >= 7 and all(abs(p - center) > sigma for p in points[i - 7 : i + 1]):
                hits.append(Rule.eight_beyond_1_sigma)
        result.append(tuple(hits))
    return result


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ControlChart:
    """Center, spread and limits of an I-MR (n=1) or X-bar/R (n>1) chart, without timestamps."""

    subgroup_size: int
    points: tuple[float, ...]
    """Plotted values: the individuals, or the subgroup means."""
    ranges: tuple[float | None, ...]
    """Moving range to the previous individual (None for the first), or the subgroup range."""
    mean: float
    sigma: float | None
    """Within-subgroup sigma: average (moving) range / d2; None with too few points."""
    ucl: float | None
    lcl: float | None
    range_center: float | None
    range_ucl: float | None
    range_lcl: float | None
    cp: float | None
    cpk: float | None
    violations: tuple[tuple[Rule, ...], ...]
    dropped: int
    """Trailing measurements that did not fill a subgroup (left off the chart)."""


def _capability(mean: float, sigma: float | None, low: float | None, high: float | None) -> tuple[float | None, ...]:
    if sigma is None or sigma <= 0:
        return None, None
    cp = (high - low) / (6 * sigma) if low is not None and high is not None else None
    sides = [(high - mean) if high is not None else None, (mean - low) if low is not None else None]
    known = [side for side in sides if side is not None]
    cpk = min(known) / (3 * sigma) if known else None
    return cp, cpk


def control_chart(
    values: Sequence[float], *, subgroup_size: int = 1, lower_spec: float | None = None, upper_spec: float | None = None
) -> ControlChart:
    """The control chart of measurements in time order.

    Subgroup size 1 gives an individuals chart: sigma = average moving range / 1.128, limits
    mean ± 3 sigma, moving-range limits D4·MR̄ and 0. Larger subgroups (consecutive measurements,
    up to 10) give X-bar/R: sigma = R̄ / d2(n), limits X̿ ± 3 sigma/√n, range limits D3·R̄ and D4·R̄.
    Cp = (USL − LSL)/6σ and Cpk = min(USL − mean, mean − LSL)/3σ use the within sigma.

    Raises:
        BadArgument: for a subgroup size outside 1..10, or no values.
    """
    n = subgroup_size
    if n != 1 and n not in D2:
        raise BadArgument("subgroup_size", f"must be 1..{max(D2)} (got {n})")
    usable = len(values) - len(values) % n
    if usable == 0:
        raise BadArgument("characteristic", f"no measurements to chart (need at least {n})")
    if n == 1:
        points = tuple(float(x) for x in values)
        ranges: tuple[float | None, ...] = (None, *(abs(b - a) for a, b in pairwise(points)))
        d2, d3 = D2[2], D3[2]
    else:
        groups = [values[i : i + n] for i in range(0, usable, n)]
        points = tuple(math.fsum(g) / n for g in groups)
        ranges = tuple(float(max(g) - min(g)) for g in groups)
        d2, d3 = D2[n], D3[n]
    mean = math.fsum(points) / len(points)
    known = [r for r in ranges if r is not None]
    r_bar = math.fsum(known) / len(known) if known else None
    sigma = r_bar / d2 if r_bar is not None else None
    spread = sigma / math.sqrt(n) if sigma is not None else None
    cp, cpk = _capability(mean, sigma, lower_spec, upper_spec)
    violations = rule_violations(points, center=mean, sigma=spread if spread is not None else 0.0)
    return ControlChart(
        subgroup_size=n,
        points=points,
        ranges=ranges,
        mean=mean,
        sigma=sigma,
        ucl=mean + 3 * spread if spread is not None else None,
        lcl=mean - 3 * spread if spread is not None else None,
        range_center=r_bar,
        range_ucl=r_bar * (1 + 3 * d3 / d2) if r_bar is not None else None,
        range_lcl=r_bar * max(0.0, 1 - 3 * d3 / d2) if r_bar is not None else None,
        cp=cp,
        cpk=cpk,
        violations=tuple(violations),
        dropped=len(values) - usable,
    )


# ---------------------------------------------------------------------------------------------
# SPC: the view


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SpcPoint:
    """One plotted point: an individual measurement or a subgroup mean."""

    ts: datetime
    """The measurement's time (for a subgroup: its last measurement's)."""
    value: float
    range: float | None
    violations: tuple[Rule, ...]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SpcChart:
    """The SPC view of one characteristic: statistics, limits, capability and the points with rule hits."""

    characteristic: str
    path: str | None
    chart: str
    """``I-MR`` or ``Xbar-R``."""
    subgroup_size: int
    count: int
    """Measurements found (with a value) in the range."""
    mean: float
    sigma: float | None
    ucl: float | None
    lcl: float | None
    range_center: float | None
    range_ucl: float | None
    range_lcl: float | None
    lower_spec: float | None
    upper_spec: float | None
    """Specification limits: the latest given by the inspections in range."""
    cp: float | None
    cpk: float | None
    points: tuple[SpcPoint, ...]
    dropped: int


def spc(
    cursor: duckdb.DuckDBPyConnection,
    *,
    characteristic: str,
    path: str | None = None,
    start: datetime,
    end: datetime,
    subgroup_size: int = 1,
    tz: ZoneInfo = UTC_ZONE,
) -> SpcChart:
    """The control chart of one inspected characteristic over ``[start, end)`` (see ``control_chart``).

    Measurements without a value (attribute inspections) are skipped. The spec limits are the
    latest non-null ``lower_limit`` and ``upper_limit`` of the charted inspections.

    Raises:
        BadArgument: for no measurements, a bad subgroup size, or a naive or empty time range.
    """
    low, high = checked_window(start, end)
    where, params = subtree_condition("path", path)
    sql = (
        "SELECT epoch_ms(ts), value, lower_limit, upper_limit FROM mes_inspections"  # noqa: S608 (trusted SQL)
        f" WHERE characteristic = ? AND value IS NOT NULL AND {where} AND ts >= ? AND ts < ?"
        " ORDER BY ts, received, event_key"
    )
    rows = cursor.execute(sql, [characteristic, *params, low, high]).fetchall()
    if not rows:
        where_text = f" at {path}" if path else ""
        raise BadArgument("characteristic", f"no measurements of {characteristic!r}{where_text} in the range")
    lsl = next((r[2] for r in reversed(rows) if r[2] is not None), None)
    usl = next((r[3] for r in reversed(rows) if r[3] is not None), None)
    chart = control_chart([r[1] for r in rows], subgroup_size=subgroup_size, lower_spec=lsl, upper_spec=usl)
    n = subgroup_size
    stamps = [instant(rows[(i + 1) * n - 1][0], tz) for i in range(len(chart.points))]
    points = tuple(
        SpcPoint(ts=ts, value=value, range=rng, violations=hits)
        for ts, value, rng, hits in zip(stamps, chart.points, chart.ranges, chart.violations, strict=True)
    )
    flagged = sum(1 for p in points if p.violations)
    log.debug("spc %s at %s: %d points, %d with rule hits", characteristic, path, len(points), flagged)
    return SpcChart(
        characteristic=characteristic,
        path=path,
        chart="I-MR" if n == 1 else "Xbar-R",
        subgroup_size=n,
        count=len(rows),
        mean=chart.mean,
        sigma=chart.sigma,
        ucl=chart.ucl,
        lcl=chart.lcl,
        range_center=chart.range_center,
        range_ucl=chart.range_ucl,
        range_lcl=chart.range_lcl,
        lower_spec=lsl,
        upper_spec=usl,
        cp=chart.cp,
        cpk=chart.cpk,
        points=points,
        dropped=chart.dropped,
    )
