"""The demo QMS's lab: every syrup batch is sampled and its sugar content (Brix) measured, as a lab result.

Pure and seeded: the result is the recipe's target plus normal noise, now and then outside the
specification, for the batch (``lot_id``) and the order it was mixed for; the QMS records it as a
``lab`` result, which the MES reads as a ``quality_inspection`` like the line's own checks.
"""

from __future__ import annotations

import random

from model.mes import Inspection, LotProduction

__all__ = ["BRIX_TARGET", "BRIX_TOLERANCE", "SyrupLab"]

BRIX_TARGET = 10.8
"""Degrees Brix of the cola syrup."""
BRIX_TOLERANCE = 0.3
_NOISE = 0.12
_SYRUP = "SYRUP-"


class SyrupLab:
    """Brix of each syrup batch.

    Args:
        seed: the same seed gives the same results for the same batches.
    """

    def __init__(self, *, seed: int) -> None:
        self._rng = random.Random(f"{seed}:lab")  # noqa: S311 - a simulation, not crypto

    def result(self, lot: LotProduction) -> Inspection | None:
        """The lab result of a produced lot, if it is a syrup batch; None for any other lot."""
        if not (lot.product_id or "").startswith(_SYRUP):
            return None
        value = round(self._rng.gauss(BRIX_TARGET, _NOISE), 2)
        return Inspection(
            timestamp_ms=lot.timestamp_ms,
            event_id=f"lab:{lot.lot_id}:brix",
            characteristic="syrup_brix",
            value=value,
            target=BRIX_TARGET,
            lower_limit=round(BRIX_TARGET - BRIX_TOLERANCE, 2),
            upper_limit=round(BRIX_TARGET + BRIX_TOLERANCE, 2),
            unit="degBx",
            order_id=lot.order_id,
            lot_id=lot.lot_id,
            sample_id=f"LAB-{lot.lot_id}",
        )
