"""What the demo QMS samples on a line: fill volume, cap torque (from the live PLC value), visual checks.

Pure and seeded: the fill volume is the target plus a slow drift, normal noise and an occasional
outlier, so the SPC view has rule violations to show; cap torque is the capper's live ``Torque``;
a visual check fails now and then with a defect type and severity.
"""

from __future__ import annotations

import math
import random

from demo.catalog import LineSetup

__all__ = [
    "FILL_NOISE_ML",
    "FILL_TOLERANCE_ML",
    "OUTLIER_ML",
    "TORQUE_TOLERANCE_NM",
    "QualitySampler",
]

FILL_TOLERANCE_ML = 5.0
"""Fill volume specification: target ± this."""
FILL_NOISE_ML = 0.9
"""Standard deviation of the fill volume around its drifting mean."""
_DRIFT_ML, _DRIFT_PERIOD_S = 1.8, 1800.0
OUTLIER_ML = (5.5, 8.0)
"""An outlier lands this far from the drifting mean (either side)."""
_OUTLIER_P = 0.04
TORQUE_TOLERANCE_NM = 0.25
_FAIL_P = 0.2
_SEVERITIES = (("minor", 0.6), ("major", 0.3), ("critical", 0.1))
# seconds of plant time between samples (uniform in the range)
_EVERY_S = {"fill_volume_ml": (20.0, 30.0), "cap_torque_nm": (30.0, 45.0), "visual_check": (60.0, 120.0)}

Body = dict[str, object]


class QualitySampler:
    """The inspections of one line, due by plant time.

    Args:
        setup: the line.
        seed: seeds this line's own random stream.
        speed: plant seconds per wall second (the sim's ``speed``).
        start_ms: wall time the demo started (the drift's origin).
    """

    def __init__(self, *, setup: LineSetup, seed: int, speed: float, start_ms: int) -> None:
        self._setup = setup
        self._speed = speed
        self._start_ms = start_ms
        self._rng = random.Random(f"{seed}:quality:{setup.path}")  # noqa: S311 - a simulation, not crypto
        self._phase = self._rng.uniform(0.0, 2 * math.pi)
        self._torque: float | None = None
        self._next: dict[str, int] = {}
        self._samples = 0
        recipe = setup.recipe
        self._kinds = [
            kind
            for kind, wanted in (
                ("fill_volume_ml", recipe.fill is not None),
                ("cap_torque_nm", recipe.torque_cell is not None and setup.torque_target is not None),
                ("visual_check", recipe.visual is not None),
            )
            if wanted
        ]

    def _wall_ms(self, plant_s: float) -> int:
        return round(plant_s * 1000 / self._speed)

    def torque(self, value: float) -> None:
        """The capper's latest ``data/Torque`` value."""
        self._torque = value

    def restart(self, now_ms: int) -> None:
        """An order started: first samples within a fraction of each cadence."""
        for kind in self._kinds:
            low, _ = _EVERY_S[kind]
            self._next[kind] = now_ms + self._wall_ms(self._rng.uniform(0.1, 0.5) * low)

    def due(self, now_ms: int, order_id: str, lot_id: str | None) -> list[tuple[str, Body]]:
        """(cell path, ``quality_inspection`` body) of every sample due by ``now_ms``."""
        out: list[tuple[str, Body]] = []
        for kind in self._kinds:
            at = self._next.get(kind)
            if at is None or at > now_ms:
                continue
            self._next[kind] = at + self._wall_ms(self._rng.uniform(*_EVERY_S[kind]))
            made = self._sample(kind, at)
            if made is None:
                continue
            cell, body = made
            self._samples += 1
            body.update(
                timestamp_ms=at,
                event_id=f"demo:qi:{cell.rsplit('/', 1)[-1]}:{kind}:{at}",
                source="qms",
                order_id=order_id,
                sample_id=f"S{self._samples:05d}",
            )
            if lot_id is not None:
                body["lot_id"] = lot_id
            out.append((cell, body))
        return out

    def _sample(self, kind: str, at_ms: int) -> tuple[str, Body] | None:
        recipe = self._setup.recipe
        if kind == "fill_volume_ml" and recipe.fill is not None:
            cell, target = recipe.fill
            return self._setup.cell(cell), self._fill(target, at_ms)
        if kind == "cap_torque_nm" and recipe.torque_cell is not None and self._setup.torque_target is not None:
            target = self._setup.torque_target
            if self._torque is None or self._torque < target / 2:
                return None  # no live value, or the capper stands still: nothing to sample
            return self._setup.cell(recipe.torque_cell), self._measured(
                "cap_torque_nm", round(self._torque, 3), target, TORQUE_TOLERANCE_NM, "N.m", "torque"
            )
        if kind == "visual_check" and recipe.visual is not None:
            cell, defects = recipe.visual
            return self._setup.cell(cell), self._visual(defects)
        return None

    def _fill(self, target: float, at_ms: int) -> Body:
        plant_s = (at_ms - self._start_ms) / 1000 * self._speed
        mean = target + _DRIFT_ML * math.sin(2 * math.pi * plant_s / _DRIFT_PERIOD_S + self._phase)
        if self._rng.random() < _OUTLIER_P:
            value = mean + self._rng.choice((-1.0, 1.0)) * self._rng.uniform(*OUTLIER_ML)
        else:
            value = self._rng.gauss(mean, FILL_NOISE_ML)
        return self._measured("fill_volume_ml", round(value, 1), target, FILL_TOLERANCE_ML, "ml", "fill")

    @staticmethod
    def _measured(characteristic: str, value: float, target: float, tolerance: float, unit: str, what: str) -> Body:
        low, high = round(target - tolerance, 3), round(target + tolerance, 3)
        body: Body = {
            "characteristic": characteristic,
            "value": value,
            "target": target,
            "lower_limit": low,
            "upper_limit": high,
            "unit": unit,
            "result": "pass" if low <= value <= high else "fail",
        }
        if body["result"] == "fail":
            body["defect_type"] = f"{what}_{'low' if value < low else 'high'}"
            body["severity"] = "major"
        return body

    def _visual(self, defects: tuple[str, ...]) -> Body:
        if self._rng.random() >= _FAIL_P:
            return {"characteristic": "visual_check", "result": "pass"}
        names, weights = [name for name, _ in _SEVERITIES], [weight for _, weight in _SEVERITIES]
        return {
            "characteristic": "visual_check",
            "result": "fail",
            "defect_type": self._rng.choice(defects),
            "severity": self._rng.choices(names, weights)[0],
        }
