"""Which state codes are availability loss, performance loss or planned downtime: presets and settings.

A site classifies non-producing state codes by range (``mes.losses``) over a preset
(``mes.loss_preset``):

- ``iso22400`` (the default): planned 150000-179999 (breaks, no shift, no order), performance
  50000-59999 (microstops), availability everything else that is not producing (unknown 30000-39999
  included: no data is lost time).
- ``umh``: United Manufacturing Hub factoryinsight's default lists, read as 10000-wide categories
  as its ``IsAvailabilityLoss``/``IsExcludedFromOEE`` do (``golang/cmd/factoryinsight/v1/database.go``
  ``GetCustomerConfiguration`` and ``v1/dataprocessing.go``, commit 030b9e92177631a713b31ef429c33e315a9bbad9):
  availability 40000 and 180000-220000, performance 50000-150000 (material, process and operator
  stops, breaks included), and what UMH excludes from OEE (unknown 30000, no shift 160000, no order
  170000) planned. UMH's 20000 (producing below full speed) is not a loss class here: it is actual
  production time, whose slower rate lowers performance through the counts.

Resolution, first match wins: changeovers when ``changeover_planned``; the explicit ranges
(``mes.losses`` and ``mes.planned_states``, which must not overlap each other); the preset's lists
(its planned list replaced by ``mes.planned_states`` when that is set, as before presets existed);
any other non-producing code is availability loss. The microstop rule (a stop shorter than
``microstop_s``) and planned windows (breaks, no shift) apply on top, in ``uns.mes.intervals``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from model.config import MesSection
from uns.errors import ConfigError

__all__ = ["CLASSES", "LOSS_PRESETS", "PRODUCING", "LossTable", "loss_table", "planned_ranges"]

CLASSES = ("availability", "performance", "planned")
"""The loss classes a state range can be given, in the order of ``mes.losses``."""

PRODUCING = (10000, 29999)
"""Producing codes (full and reduced speed): actual production time, never a loss class."""

_CHANGEOVER = (100000, 109999)

_Ranges = tuple[tuple[int, int], ...]

LOSS_PRESETS: Mapping[str, Mapping[str, _Ranges]] = MappingProxyType(
    {
        "iso22400": MappingProxyType(
            {
                "availability": ((30000, 49999), (60000, 149999), (180000, 229999)),
                "performance": ((50000, 59999),),
                "planned": ((150000, 179999),),
            }
        ),
        "umh": MappingProxyType(
            {
                "availability": ((40000, 49999), (180000, 229999)),
                "performance": ((50000, 159999),),
                "planned": ((30000, 39999), (160000, 179999)),
            }
        ),
    }
)
"""Preset name -> loss class -> inclusive state code ranges."""


@dataclasses.dataclass(frozen=True, slots=True)
class LossTable:
    """Disjoint, sorted ``(low, high, class)`` code ranges; a code in none is availability loss."""

    ranges: tuple[tuple[int, int, str], ...]

    def class_of(self, code: int) -> str | None:
        """The listed class of ``code``, None when no range names it (then: availability loss)."""
        for low, high, name in self.ranges:
            if low <= code <= high:
                return name
        return None

    def columns(self) -> tuple[list[int], list[int], list[str]]:
        """The ranges as three parallel lists (SQL parameters)."""
        return [r[0] for r in self.ranges], [r[1] for r in self.ranges], [r[2] for r in self.ranges]


def planned_ranges(section: MesSection) -> list[tuple[int, int]]:
    """The preset's planned ranges as ``mes.planned_states`` replaces them: what to extend to add planned codes."""
    if section.planned_states is not None:
        return [(int(low), int(high)) for low, high in section.planned_states]
    return list(LOSS_PRESETS[section.loss_preset]["planned"])


def _checked(field: str, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """Each range of ``field`` with its field path; inverted or producing ranges are refused."""
    out: list[tuple[int, int, str]] = []
    for index, (low, high) in enumerate(ranges):
        where = f"{field}[{index}]"
        if low > high:
            raise ConfigError(
                source="settings", path=where, reason="the range's low end is above its high end", value=[low, high]
            )
        if low <= PRODUCING[1] and high >= PRODUCING[0]:
            raise ConfigError(
                source="settings",
                path=where,
                reason="producing states (10000-29999) are actual production time, not a loss class",
                value=[low, high],
            )
        out.append((int(low), int(high), where))
    return out


def _explicit(section: MesSection) -> list[tuple[int, int, str, str]]:
    """``mes.losses`` and ``mes.planned_states`` as (low, high, class, field); overlaps are refused."""
    found: list[tuple[int, int, str, str]] = []
    for name in CLASSES:
        given = getattr(section.losses, name)
        found += [(lo, hi, name, where) for lo, hi, where in _checked(f"mes.losses.{name}", given or ())]
    found += [
        (lo, hi, "planned", where) for lo, hi, where in _checked("mes.planned_states", section.planned_states or ())
    ]
    ordered = sorted(found)
    for before, after in itertools.pairwise(ordered):
        if after[0] <= before[1]:
            raise ConfigError(
                source="settings",
                path=after[3],
                reason=f"overlaps {before[3]} [{before[0]}, {before[1]}]: a state code has one loss class",
                value=[after[0], after[1]],
            )
    return found


def _flatten(layers: Sequence[Sequence[tuple[int, int, str]]]) -> tuple[tuple[int, int, str], ...]:
    """Disjoint ranges where an earlier layer wins over a later one."""
    taken: list[tuple[int, int, str]] = []
    for layer in layers:
        for low, high, name in layer:
            pieces = [(low, high)]
            for t_low, t_high, _ in taken:
                pieces = [
                    part
                    for p_low, p_high in pieces
                    for part in ((p_low, min(p_high, t_low - 1)), (max(p_low, t_high + 1), p_high))
                    if part[0] <= part[1]
                ]
            taken += [(p_low, p_high, name) for p_low, p_high in pieces]
    merged: list[tuple[int, int, str]] = []
    for low, high, name in sorted(taken):
        if merged and merged[-1][2] == name and merged[-1][1] + 1 == low:
            merged[-1] = (merged[-1][0], high, name)
        else:
            merged.append((low, high, name))
    return tuple(merged)


_CACHE: dict[object, LossTable] = {}


def loss_table(section: MesSection) -> LossTable:
    """The resolved classification of ``section`` (see the module's docstring).

    Raises:
        ConfigError: an inverted range, a range over producing codes, or two explicit ranges that
            overlap, naming the field (``mes.losses.availability[1]``, ``mes.planned_states[0]``).
    """
    key = (section.loss_preset, section.losses, section.planned_states, section.changeover_planned)
    hashable = repr(key)
    cached = _CACHE.get(hashable)
    if cached is not None:
        return cached
    explicit = [(lo, hi, name) for lo, hi, name, _ in _explicit(section)]
    preset = LOSS_PRESETS[section.loss_preset]
    planned = () if section.planned_states is not None else preset["planned"]
    layers = [
        [(*_CHANGEOVER, "planned")] if section.changeover_planned else [],
        explicit,
        [(lo, hi, "planned") for lo, hi in planned],
        [(lo, hi, "performance") for lo, hi in preset["performance"]],
        [(lo, hi, "availability") for lo, hi in preset["availability"]],
    ]
    table = LossTable(_flatten(layers))
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[hashable] = table
    return table
