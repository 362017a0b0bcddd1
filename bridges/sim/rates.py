"""How the demo reads its plant: poll groups, OPC UA intervals, deadbands and the PLCs' refresh.

These are the settings a plant engineer tunes when connecting real machines, set as one would:
fast PLC signals (states, counters, speeds, power) polled every second, slow ones (temperatures,
pressures, levels, flows, energy and hour meters) every 5 s, OPC UA sampled and published every
second, and report by exception with a deadband on every analog value that jitters, so the noise
of a steady machine is not sent but every real move (a stop, a start, a setpoint change) is. The
edge engine still sends an unchanged value every heartbeat (60 s). Figures: docs/bridges.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from pydantic import BaseModel

from bridges.sim.plant import DEMO_LINES, DEMO_UTILITIES, MachineSpec
from model.config import HistorianSection

__all__ = [
    "COMMIT_S",
    "ENERGY_DEADBAND_KWH",
    "FAST_POLL_S",
    "JITTER_SIGMAS",
    "NOMINAL_DEADBAND",
    "OPCUA_SAMPLING_MS",
    "REFRESH_S",
    "RUN_HOURS_DEADBAND_H",
    "SLOW_POLL_S",
    "deadband",
    "demo_commit_interval_s",
    "demo_historian_section",
    "poll_groups",
]

FAST_POLL_S = 1.0
"""Poll interval of states, fault codes, counters, speeds, power, setpoints and run commands."""
SLOW_POLL_S = 5.0
"""Poll interval of temperatures, pressures, levels, flows, energy meters and hour meters."""
OPCUA_SAMPLING_MS = 1000.0
"""Sampling and publishing interval of the packaging subscriptions."""
REFRESH_S = min(FAST_POLL_S, OPCUA_SAMPLING_MS / 1000)
"""Real seconds between refreshes of the simulated PLCs: as often as the demo's fastest reader looks, no faster
(the model still steps every 100 ms of simulated time; a refresh no client reads is work for nothing)."""


COMMIT_S = 2.0
"""How often the demo's historian and MES commit (unless the settings say): a commit costs the writer thread a
fixed few ms of DuckDB work however few rows it holds (~4 ms for 25 samples), and the demo's ~22 values a second
are no more stored at one commit a second than at one every two; live views read the UNS, not the file."""


def poll_groups() -> dict[str, float]:
    """The poll groups of every demo PLC: ``fast`` and ``slow`` (``layout.Metric.poll`` names one)."""
    return {"fast": FAST_POLL_S, "slow": SLOW_POLL_S}


NOMINAL_DEADBAND = 0.03
"""Deadband of speeds, cycle times and power, as a share of the machine's nominal value: three times their
1 % jitter while running, so a steady machine sends them about twice a minute and a stop at once."""
ENERGY_DEADBAND_KWH = 0.1
"""Deadband of the energy meters: the resolution of a typical kWh register."""
RUN_HOURS_DEADBAND_H = 0.01
"""Deadband of the hour meters (36 s)."""
JITTER_SIGMAS = 3.0
"""Deadband of the process values, in standard deviations of their jitter between two reads: a steady value is
sent about once a minute (or at the heartbeat), a move at once."""

_SPECS: Mapping[str, MachineSpec] = MappingProxyType(
    {spec.id: spec for spec in (*(m for line in DEMO_LINES for m in line.machines), *DEMO_UTILITIES)}
)


def _jitter(spec: MachineSpec, name: str, interval_s: float) -> float:
    """``JITTER_SIGMAS`` standard deviations of a process value's change between two reads ``interval_s`` apart.

    A first-order lag driven by noise: around its target it has a standard deviation of
    ``noise * sqrt(tau / 2)``, and two reads ``t`` apart differ by that times ``sqrt(2 (1 - exp(-t / tau)))``.
    """
    pv = next((pv for pv in spec.process if pv.name == name), None)
    if pv is None:
        return 0.0
    spread = pv.noise * math.sqrt(pv.tau_s / 2)
    return JITTER_SIGMAS * spread * math.sqrt(2 * (1 - math.exp(-interval_s / pv.tau_s)))


def deadband(machine: str, metric: str, interval_s: float) -> float:
    """The report-by-exception deadband of ``metric`` on the demo ``machine``, read every ``interval_s``; 0: any change.

    Process values (temperatures, pressures, levels, flows, torque) get ``JITTER_SIGMAS`` times their
    jitter between two reads, speeds, cycle times and power ``NOMINAL_DEADBAND`` of nominal, energy and
    hour meters their register's resolution. States, fault codes, counters, flags, setpoints and
    commands report every change. Rounded to two digits, as an engineer would write it.
    """
    spec = _SPECS.get(machine)
    if spec is None:
        return 0.0
    match metric:
        case "Speed":
            band = NOMINAL_DEADBAND * spec.rate
        case "CycleTime":
            band = NOMINAL_DEADBAND * 60.0 / spec.rate
        case "Power":
            band = NOMINAL_DEADBAND * spec.power_run_kw
        case "Energy":
            band = ENERGY_DEADBAND_KWH
        case "Counters/RunHours":
            band = RUN_HOURS_DEADBAND_H
        case _:
            band = _jitter(spec, metric, interval_s)
    return float(f"{band:.2g}")


def demo_historian_section(section: HistorianSection) -> HistorianSection:
    """``section`` with the demo's flush interval, ``COMMIT_S`` (unless it gives one).

    The historian's own 0.5 s suits any plant; the demo's data comes once a second, and each commit
    costs the writer thread a fixed few ms of DuckDB work however few rows it holds (~4 ms for 25 samples).
    """
    return section.model_copy(update={"flush_interval_s": demo_commit_interval_s(section, "flush_interval_s")})


def demo_commit_interval_s(section: BaseModel, field: str) -> float:
    """How often a consumer of the demo's data commits: ``section.field`` when the settings give it, else COMMIT_S.

    Given means a YAML, env or flag value, even one equal to the default; unset, the consumer commits every
    ``COMMIT_S``: a stored value or MES count is at most that old in the file (the dashboards' live values
    come from the UNS at once either way).
    """
    return float(getattr(section, field)) if field in section.model_fields_set else COMMIT_S
