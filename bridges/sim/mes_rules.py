"""What the MES adapter needs to read the simulated plant: state mapping, counters, ideal cycle times.

The demo plant has no MES software: its production, machine and OEE views come from the bridges
alone, through these derive rules (``mes.derive``) and the machines' nameplate rates.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridges.sim.plant import DEMO_LINES, FAULT_CODES, LineSpec, MachineState
from bridges.sim.rates import demo_commit_interval_s
from model.config import DeriveRule, MesSection
from model.equipment import Plant
from uns.mes.losses import planned_ranges

__all__ = [
    "DEMO_NAMEPLATE_HEADROOM",
    "DEMO_PLANNED",
    "DEMO_STATE_MAP",
    "demo_derive_rules",
    "demo_ideal_cycle_times",
    "demo_mes_section",
    "demo_mixed_unit_lines",
    "demo_reasons",
]

DEMO_STATE_MAP: dict[int, int] = {
    MachineState.RUNNING: 10000,  # producing
    MachineState.IDLE: 40100,  # idle: ready but not asked to run
    MachineState.STARVED: 60000,  # material: inlet starved
    MachineState.BLOCKED: 70000,  # material: outlet blocked
    MachineState.FAULT: 180000,  # technical: equipment failure, FaultCode says why
    MachineState.CHANGEOVER: 100000,  # process: changeover
    MachineState.PLANNED_STOP: 210000,  # preventive maintenance: planned in the sim's schedule (DEMO_PLANNED)
}
"""The simulated PLCs' ``State`` codes -> state catalog codes."""


DEMO_PLANNED: tuple[int, int] = (210000, 219999)
"""The demo's maintenance stops are scheduled: planned downtime, added to the preset's planned ranges."""


def demo_derive_rules(enterprise: str) -> list[DeriveRule]:
    """State, counters and part-done bits of every simulated machine, as MES events."""
    cells = f"{enterprise}/+/+/+/+/data"
    return [
        DeriveRule(match=f"{cells}/State", kind="state", state_map=DEMO_STATE_MAP, reason_match="FaultCode"),
        DeriveRule(match=f"{cells}/Production/GoodCount", kind="counter", counts="good"),
        DeriveRule(match=f"{cells}/Production/ScrapCount", kind="counter", counts="scrap"),
        # PartDone toggles once per cycle (not a pulse), so the counters give the counts and rates
    ]


DEMO_NAMEPLATE_HEADROOM = 1.05
"""A simulated machine's nameplate (ideal) rate over the nominal rate it runs at (±1 % noise).

Real lines run a little below nameplate; were the ideal the running rate itself, the noise and the
bridges' polling would put a machine above 100 % performance over a short window.
"""


def demo_ideal_cycle_times(plant: Plant, lines: Sequence[LineSpec] = DEMO_LINES) -> dict[str, float]:
    """Equipment path -> ideal seconds per counted unit, from each machine's nameplate rate."""
    paths = plant.equipment_paths()
    out: dict[str, float] = {}
    for line in lines:
        for machine in line.machines:
            suffix = f"/{line.id}/{machine.id}"
            for path in paths:
                if path.endswith(suffix):
                    out[path] = 60.0 / (machine.rate * DEMO_NAMEPLATE_HEADROOM) * machine.cycles_per_output
    return out


def demo_mixed_unit_lines(plant: Plant, lines: Sequence[LineSpec] = DEMO_LINES) -> list[str]:
    """Lines whose machines count different units (line3: cases, then pallets, then wrapped pallets)."""
    out: list[str] = []
    for line in lines:
        if len({machine.cycles_per_output for machine in line.machines}) > 1 or any(
            machine.rate < 1 for machine in line.machines
        ):
            out.extend(
                path for path in plant.equipment_paths() if path.endswith(f"/{line.id}") and path.count("/") == 3
            )
    return out


def demo_reasons() -> dict[str, str]:
    """The demo reason catalog: the simulated fault codes."""
    return {str(code): text for code, text in FAULT_CODES.items() if code}


def demo_mes_section(section: MesSection, plant: Plant, *, speed: float = 1.0) -> MesSection:
    """``section`` with what the demo plant needs added (settings the user gave win).

    ``section``'s outputs are the hub's already (``hub.app.mes_section``: the settings' ``output_cells``, the plant
    file's last cells as ``plant_outputs``); the demo adds none.

    ``speed`` is the sim's plant seconds per wall second: MES times are wall times, so a plant run
    at x10 makes a unit in a tenth of the wall seconds and its ideal cycle times shrink alike. The
    adapter commits as often as the counters and states it derives from are polled (unless set).
    """
    ideal = {path: seconds / speed for path, seconds in demo_ideal_cycle_times(plant).items()}
    return section.model_copy(
        update={
            "commit_interval_s": demo_commit_interval_s(section, "commit_interval_s"),
            "derive": section.derive or demo_derive_rules(plant.enterprise.id),
            "ideal_cycle_time_s": {**ideal, **section.ideal_cycle_time_s},
            "planned_states": [*planned_ranges(section), DEMO_PLANNED],
            "output_only_lines": [*section.output_only_lines, *demo_mixed_unit_lines(plant)],
            "reasons": {**demo_reasons(), **section.reasons},
        }
    )
