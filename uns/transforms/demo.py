"""The demo plant's computed tags, run by ``uns up`` with the demo (the settings file may override each)."""

from __future__ import annotations

from model.config import Settings
from model.transforms import ComputedTag

__all__ = ["DEMO_TAGS", "builtin_tags"]

_LINE1 = "acme/dallas/bottling/line1"
_LINE2 = "acme/dallas/bottling/line2"
_LINE3 = "acme/dallas/packaging/line3"


def _tag(name: str, path: str, expression: str, inputs: dict[str, object], unit: str | None, what: str) -> ComputedTag:
    # a rate falls to 0 when the line stops (its counter then sends nothing): re-evaluated every 5 s
    every = "5s" if "rate(" in expression else None
    return ComputedTag.model_validate(
        {"name": name, "path": path, "expression": expression, "inputs": inputs, "unit": unit, "description": what,
         "every": every}
    )  # fmt: skip


DEMO_TAGS: tuple[ComputedTag, ...] = (
    _tag(
        "Computed/LineSpeed",
        _LINE1,
        'round(rate(n, "1m"), 1)',
        {"n": f"{_LINE1}/labeler/data/Production/GoodCount"},
        "bpm",
        "Line 1 output per minute, from the labeler's (last cell's) good-bottle counter.",
    ),
    _tag(
        "Computed/LineSpeed",
        _LINE2,
        'round(rate(n, "1m"), 1)',
        {"n": f"{_LINE2}/capper2/data/Production/GoodCount"},
        "bpm",
        "Line 2 output per minute, from the crown capper's good-bottle counter.",
    ),
    _tag(
        "Computed/LineSpeed",
        _LINE3,
        'round(rate(n, "1m"), 1)',
        {"n": f"{_LINE3}/palletizer/data/Production/GoodCount"},
        "pallet/min",
        "Line 3 pallets per minute, from the palletizer's counter.",
    ),
    _tag(
        "Computed/Temperature_degF",
        f"{_LINE1}/filler",
        "round(t, 1)",
        {"t": {"topic": f"{_LINE1}/filler/data/Temperature", "unit": "degF"}},
        "degF",
        "The filler bowl's product temperature in degrees Fahrenheit (for the US quality report).",
    ),
    _tag(
        "Computed/Pressure_psi",
        f"{_LINE1}/filler",
        'round(avg(p, "1m"), 2)',
        {"p": {"topic": f"{_LINE1}/filler/data/Pressure", "unit": "psi"}},
        "psi",
        "The filler bowl pressure in psi, averaged over a minute.",
    ),
    _tag(
        "Computed/Yield",
        f"{_LINE1}/filler",
        "round(100 * good / (good + scrap), 2) if good + scrap > 0 else 100.0",
        {"good": f"{_LINE1}/filler/data/Production/GoodCount", "scrap": f"{_LINE1}/filler/data/Production/ScrapCount"},
        "percent",
        "Share of good bottles at the filler since its counters started.",
    ),
)
"""Line speeds per minute from the counters, the filler temperature in degF and pressure in psi, a yield."""


def builtin_tags(settings: Settings) -> tuple[ComputedTag, ...]:
    """The built-in computed tags of these settings' hub: the demo's with the demo, else none (``uns up``, a check)."""
    return DEMO_TAGS if settings.demo else ()
