"""The demo QMS's lab (pure): a Brix result per syrup batch, seeded, none for other lots."""

from __future__ import annotations

from demo.lab import BRIX_TARGET, BRIX_TOLERANCE, SyrupLab
from model.mes import InspectionResult, LotProduction

T0 = 1_764_000_000_000


def lot(lot_id: str, product: str) -> LotProduction:
    return LotProduction(timestamp_ms=T0, lot_id=lot_id, product_id=product, quantity=1000.0, order_id="WO-1")


def test_each_syrup_batch_gets_a_brix_result_for_its_lot_and_order() -> None:
    lab = SyrupLab(seed=42)
    results = [lab.result(lot(f"SYR-L1-{n}", "SYRUP-COLA")) for n in range(200)]
    assert all(r is not None for r in results)
    first = results[0]
    assert first is not None
    assert (first.characteristic, first.unit, first.lot_id, first.order_id) == (
        "syrup_brix",
        "degBx",
        "SYR-L1-0",
        "WO-1",
    )
    assert (first.lower_limit, first.upper_limit, first.target) == (10.5, 11.1, BRIX_TARGET)
    assert (first.timestamp_ms, first.event_id, first.sample_id) == (T0, "lab:SYR-L1-0:brix", "LAB-SYR-L1-0")
    values = [r.value for r in results if r is not None and r.value is not None]
    assert abs(sum(values) / len(values) - BRIX_TARGET) < 0.05
    outcomes = {r.outcome for r in results if r is not None}
    assert outcomes == {InspectionResult.passed, InspectionResult.failed}  # now and then out of specification
    assert all(
        abs(v - BRIX_TARGET) <= BRIX_TOLERANCE
        for r, v in zip(results, values, strict=True)
        if r and r.outcome == InspectionResult.passed
    )
    again = SyrupLab(seed=42).result(lot("SYR-L1-0", "SYRUP-COLA"))
    assert again is not None
    assert again.value == first.value  # the same seed, the same results


def test_other_lots_go_to_no_lab() -> None:
    assert SyrupLab(seed=1).result(lot("B1-261206-101010", "COLA-PET-050")) is None
