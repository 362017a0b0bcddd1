"""The machine state catalog (United Manufacturing Hub ranges), loss rules, and presets from other standards.

A state code is an integer whose range says what kind of state it is (``category_of``); a site
decides which states are planned downtime, availability loss or performance loss (``LossRules``,
from ``MesSection``). Machines that speak another standard are mapped onto the catalog with a
preset (``preset``): PackML, Weihenstephan, EUROMAP or the catalog itself (``umh``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, Self

from model.config import MesLosses, MesSection
from uns.errors import ConfigError
from uns.mes.losses import LossTable, loss_table

__all__ = [
    "CATALOG",
    "CHANGEOVER",
    "PRESETS",
    "UNKNOWN",
    "LossClass",
    "LossRules",
    "StateCategory",
    "category_of",
    "is_producing",
    "preset",
    "state_name",
]

UNKNOWN = 30000
"""No data: the PLC is unreachable, its value is bad or stale, or its code is not mapped."""

CHANGEOVER = (100000, 109999)
"""Changeover codes (100000 changeover, 100010 preparation, 100020 postprocessing, ...)."""


class StateCategory(StrEnum):
    """What kind of state a code is, by its range."""

    producing = "producing"
    """10000-19999: producing at full speed."""
    producing_reduced = "producing_reduced"
    """20000-29999: producing below full speed."""
    unknown = "unknown"
    """30000-39999: no data; also any code outside the catalog's ranges."""
    unspecified = "unspecified"
    """40000-49999: stopped for a reason not known (yet)."""
    microstop = "microstop"
    """50000-59999: a short stop."""
    material = "material"
    """60000-99999: starved, blocked, congestion, material issues."""
    process = "process"
    """100000-139999: changeover, cleaning, emptying, setting up."""
    operator = "operator"
    """140000-159999: operator not at the machine, operator break."""
    planning = "planning"
    """160000-179999: no shift, no order."""
    technical = "technical"
    """180000-229999: failures, interference, maintenance."""


_RANGES: tuple[tuple[int, int, StateCategory], ...] = (
    (10000, 19999, StateCategory.producing),
    (20000, 29999, StateCategory.producing_reduced),
    (30000, 39999, StateCategory.unknown),
    (40000, 49999, StateCategory.unspecified),
    (50000, 59999, StateCategory.microstop),
    (60000, 99999, StateCategory.material),
    (100000, 139999, StateCategory.process),
    (140000, 159999, StateCategory.operator),
    (160000, 179999, StateCategory.planning),
    (180000, 229999, StateCategory.technical),
)

CATALOG: Mapping[int, str] = MappingProxyType(
    {
        10000: "producing at full speed",
        20000: "producing below full speed",
        30000: "unknown",
        40000: "stop",
        40100: "idle",
        40200: "operator interaction",
        50000: "microstop",
        60000: "inlet jam / starved",
        70000: "outlet jam / blocked",
        80000: "congestion in bypass",
        90000: "material issue",
        100000: "changeover",
        100010: "changeover preparation",
        100020: "changeover postprocessing",
        110000: "cleaning",
        120000: "emptying",
        130000: "setting up",
        140000: "operator not at machine",
        150000: "operator break",
        160000: "no shift",
        170000: "no order",
        180000: "equipment failure",
        190000: "external failure",
        200000: "external interference",
        210000: "preventive maintenance",
        220000: "technical other",
    }
)
"""The named codes of the catalog; any other code in a range is a sub-code of its category."""


def category_of(code: int) -> StateCategory:
    """The category of a state code; a code outside every range is ``unknown``."""
    for low, high, category in _RANGES:
        if low <= code <= high:
            return category
    return StateCategory.unknown


def is_producing(code: int) -> bool:
    """Whether the code is a producing state (10000-29999), at full or reduced speed."""
    return 10000 <= code <= 29999


def state_name(code: int) -> str:
    """A readable name: the catalog's name, else the category and the code (``technical 181000``)."""
    name = CATALOG.get(code)
    if name is not None:
        return name
    return f"{category_of(code).value.replace('_', ' ')} {code}"


class LossClass(StrEnum):
    """Where time in a state goes in ISO 22400 OEE."""

    none = "none"
    """Producing: actual production time."""
    planned = "planned"
    """Planned downtime: not part of planned busy time."""
    availability = "availability"
    """Unplanned stop: lowers availability."""
    performance = "performance"
    """Microstop: counted inside actual production time, lowers performance."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LossRules:
    """Which loss a stretch of time in a state is, by the site's rules (as ``uns.mes.intervals`` classifies).

    Attributes:
        microstop_s: a stop of availability class shorter than this is a microstop.
        planned_states: inclusive code ranges of planned downtime replacing the preset's (None: the preset's).
        changeover_planned: changeovers (100000-109999) are planned downtime, whatever their class.
        loss_preset: ``iso22400`` or ``umh`` (``uns.mes.losses``).
        losses: explicit ranges per class, over the preset's.
    """

    microstop_s: float = 120.0
    planned_states: tuple[tuple[int, int], ...] | None = None
    changeover_planned: bool = False
    loss_preset: Literal["iso22400", "umh"] = "iso22400"
    losses: MesLosses = dataclasses.field(default_factory=MesLosses)
    table: LossTable = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not math.isfinite(self.microstop_s) or self.microstop_s < 0:
            raise ConfigError(
                source="settings", path="mes.microstop_s", reason="must be finite and ≥ 0", value=self.microstop_s
            )
        section = MesSection(
            planned_states=None if self.planned_states is None else list(self.planned_states),
            changeover_planned=self.changeover_planned,
            loss_preset=self.loss_preset,
            losses=self.losses,
        )
        object.__setattr__(self, "table", loss_table(section))

    @classmethod
    def from_section(cls, section: MesSection) -> Self:
        """The rules of a ``MesSection``.

        Raises:
            ConfigError: an inverted, producing or overlapping range (named), or a bad microstop threshold.
        """
        planned = section.planned_states
        return cls(
            microstop_s=section.microstop_s,
            planned_states=None if planned is None else tuple((int(low), int(high)) for low, high in planned),
            changeover_planned=section.changeover_planned,
            loss_preset=section.loss_preset,
            losses=section.losses,
        )

    def is_planned(self, code: int) -> bool:
        """Whether time in ``code`` is planned downtime (whatever its duration)."""
        return not is_producing(code) and self.table.class_of(code) == LossClass.planned.value

    def loss_of(self, code: int, duration_s: float | None = None) -> LossClass:
        """The loss class of ``duration_s`` seconds spent in ``code``.

        Producing is no loss; a code classed planned or performance (``uns.mes.losses``) is that;
        an availability-class stop shorter than ``microstop_s`` is performance loss, except unknown
        (30000-39999) and codes outside the catalog, which stay availability loss whatever their
        length. ``duration_s=None`` (a stop still running) is never a microstop by length.
        """
        if is_producing(code):
            return LossClass.none
        listed = self.table.class_of(code)
        if listed in (LossClass.planned.value, LossClass.performance.value):
            return LossClass(listed)
        if category_of(code) is StateCategory.unknown:
            return LossClass.availability
        if duration_s is not None and duration_s < self.microstop_s:
            return LossClass.performance
        return LossClass.availability


class _Identity(Mapping[int, int]):
    """Every catalog code (10000-229999) maps to itself; codes outside the ranges are not mapped."""

    _LOW, _HIGH = _RANGES[0][0], _RANGES[-1][1]

    def __getitem__(self, code: int) -> int:
        if isinstance(code, int) and self._LOW <= code <= self._HIGH:
            return code
        raise KeyError(code)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self._LOW, self._HIGH + 1))

    def __len__(self) -> int:
        return self._HIGH - self._LOW + 1

    def __repr__(self) -> str:
        return f"<identity {self._LOW}..{self._HIGH}>"


# PackML (ANSI/ISA-TR88.00.02) state numbers, as in the PackML tag naming guidelines and OMAC's
# PackML 2022 state constants (0 Undefined ... 17 Complete; 1 was "Off" before V3, now Clearing).
# Targets follow the United Manufacturing Hub state data model (docs/datamodel.md), which assigns
# each PackML state a catalog code; Idle goes to the finer 40100 and Aborted (which UMH leaves out)
# to 220000 technical other: an abort follows a fault or an emergency stop.
_PACKML: Mapping[int, int] = MappingProxyType(
    {
        0: 30000,  # Undefined -> unknown
        1: 40000,  # Clearing -> unspecified stop
        2: 40000,  # Stopped
        3: 40000,  # Starting
        4: 40100,  # Idle -> idle
        5: 90000,  # Suspended (starved/blocked by the line) -> material issue
        6: 10000,  # Execute -> producing
        7: 20000,  # Stopping -> producing below full speed (UMH)
        8: 20000,  # Aborting (UMH)
        9: 220000,  # Aborted -> technical other (our choice)
        10: 20000,  # Holding
        11: 220000,  # Held -> technical other (UMH)
        12: 20000,  # Unholding
        13: 20000,  # Suspending
        14: 20000,  # Unsuspending
        15: 40000,  # Resetting
        16: 20000,  # Completing
        17: 40000,  # Complete (UMH: unspecified stop)
    }
)

# Weihenstephan Standards WS_Cur_State: one bit per state. 128 = Operating is confirmed by
# captured WS Pack PLC data; bits 1..4096 and 32768 follow a published WS Pack PLC implementation
# (Stopped 1, Starting 2, Prepared 4, Lack 8, Tailback 16, Lack/Tailback branch line 32/64,
# Operating 128, Stopping 256, Aborting 512, Equipment failure 1024, External failure 2048,
# Emergency stop 4096, Idle 32768). Holding 8192 and Held 16384 are our reading of the unused
# bits; OPC 40600 (OPC UA for Weihenstephan) models these as PackML states and does not list
# numbers. Targets follow the UMH data model. A value with several bits set is not mapped
# (unknown): add it to ``state_map`` if a PLC combines bits.
_WEIHENSTEPHAN: Mapping[int, int] = MappingProxyType(
    {
        0: 30000,  # no bit set: undefined
        1: 40000,  # Stopped
        2: 40000,  # Starting
        4: 40000,  # Prepared
        8: 60000,  # Lack -> inlet starved
        16: 70000,  # Tailback -> outlet blocked
        32: 80000,  # Lack branch line -> congestion in bypass
        64: 80000,  # Tailback branch line
        128: 10000,  # Operating -> producing
        256: 20000,  # Stopping
        512: 20000,  # Aborting
        1024: 180000,  # Equipment failure
        2048: 190000,  # External failure
        4096: 40000,  # Emergency stop (UMH: unspecified stop)
        8192: 20000,  # Holding (bit assumed, see above)
        16384: 40000,  # Held (bit assumed, see above)
        32768: 40100,  # Idle
    }
)

# EUROMAP 77 (OPC 40077, injection moulding machines to MES) reports the machine mode with
# EUROMAP 83 (OPC 40083) MachineModeEnumeration, section 12.4: OTHER 0, AUTOMATIC 1,
# SEMI_AUTOMATIC 2, MANUAL 3, SETUP 4, SLEEP 5. Mode is not production status: a machine in
# automatic that does not produce shows as producing here. Where ProductionStatus is available,
# map it with "euromap_production" instead (or on its own rule).
_EUROMAP: Mapping[int, int] = MappingProxyType(
    {
        0: 30000,  # OTHER -> unknown
        1: 10000,  # AUTOMATIC -> producing
        2: 20000,  # SEMI_AUTOMATIC -> producing below full speed (operator paces the cycle)
        3: 40200,  # MANUAL -> operator interaction
        4: 130000,  # SETUP -> setting up
        5: 40100,  # SLEEP -> idle (switched on, production not possible)
    }
)

# EUROMAP 83 (OPC 40083) ProductionStatusEnumeration, section 14.7.1: OTHER 0, NO_PRODUCTION 1,
# START_UP 2, READY_FOR_PRODUCTION 3, PRODUCTION 4, DRY_RUN 5.
_EUROMAP_PRODUCTION: Mapping[int, int] = MappingProxyType(
    {
        0: 30000,  # OTHER -> unknown
        1: 40000,  # NO_PRODUCTION -> unspecified stop
        2: 20000,  # START_UP -> producing below full speed (settings not reached yet)
        3: 20000,  # READY_FOR_PRODUCTION -> producing, not yet released by quality
        4: 10000,  # PRODUCTION -> producing
        5: 130000,  # DRY_RUN -> setting up (moving without material)
    }
)

PRESETS: Mapping[str, Mapping[int, int]] = MappingProxyType(
    {
        "packml": _PACKML,
        "weihenstephan": _WEIHENSTEPHAN,
        "euromap": _EUROMAP,
        "euromap_production": _EUROMAP_PRODUCTION,
        "umh": _Identity(),
    }
)
"""Preset name -> (standard's code -> catalog code)."""


def preset(name: str) -> Mapping[int, int]:
    """The mapping of a standard's state codes onto the catalog.

    Args:
        name: ``packml``, ``weihenstephan``, ``euromap``, ``euromap_production`` or ``umh`` (identity).

    Raises:
        ConfigError: no preset has that name.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            source="settings",
            path="mes.derive.state_preset",
            reason=f"no such state preset; one of {', '.join(PRESETS)}",
            value=name,
        ) from None
