"""MES event bodies (DESIGN section 4): what arrives on ``<equipment path>/mes/<event>`` and ``POST /api/mes/<event>``.

The equipment path comes from the topic (or the API path), never from the body: a count published
on ``acme/dallas/bottling/line1/filler/mes/production_count`` is the filler's. Every body carries
``timestamp_ms`` (when it happened, ms since 1970 UTC) and may carry ``event_id``: a re-sent event
with the same id is stored once (without one, the hash of topic and body is the id).

Validation here is per event (types, ranges, one field against another). What needs other events
(an unknown order, two orders running on one line) is checked by the MES adapter.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

__all__ = [
    "EVENT_MODELS",
    "BomItem",
    "Break",
    "DowntimeReason",
    "InputLot",
    "Inspection",
    "InspectionResult",
    "Labor",
    "LaborAction",
    "LotProduction",
    "MachineState",
    "MaintenanceOrder",
    "MaintenanceStatus",
    "MaterialConsumption",
    "MesEvent",
    "OrderAction",
    "ProductType",
    "ProductionCount",
    "Severity",
    "Shift",
    "WorkOrder",
]

_Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f/+#]+$")]
_Ms = Annotated[int, Field(ge=0, strict=True)]
_Qty = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class MesEvent(BaseModel):
    """What every MES event body has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timestamp_ms: _Ms = Field(
        description="When it happened, milliseconds since 1970 UTC (the hub's intake also reads an ISO 8601 string "
        "in every *_ms field and stores it as milliseconds)."
    )
    event_id: _Id | None = Field(
        default=None, description="Idempotency key: an event re-sent with the same id is stored once."
    )
    source: str | None = Field(
        default=None, max_length=128, description="Who sent it: erp, an operator terminal, or 'derived' by the hub."
    )


class OrderAction(StrEnum):
    """A work order's life cycle, as the ERP reports it."""

    release = "release"
    """Planned and released to the shop floor (carries product, quantity and plan)."""
    start = "start"
    """Production of the order begins on its line."""
    complete = "complete"
    """The order is finished (or closed short)."""


class BomItem(BaseModel):
    """One line of an order's bill of materials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    material_id: _Id = Field(description="Material number.")
    quantity_per_unit: _Qty = Field(description="How much of the material one unit of product needs.")
    unit: str = Field(default="pcs", min_length=1, max_length=32, description="Unit of the material quantity.")


def _planned_end_after_start(value: int | None, info: ValidationInfo) -> int | None:
    """A planned window ends after it starts (work orders and maintenance orders alike)."""
    start = info.data.get("planned_start_ms")
    if value is not None and start is not None and value <= start:
        raise ValueError(f"must be after planned_start_ms ({start})")
    return value


class WorkOrder(MesEvent):
    """``<line>/mes/work_order``: an ERP order released to, started on or completed at a line."""

    order_id: _Id = Field(description="The ERP order number.")
    action: OrderAction = Field(description="release, start or complete.")
    product_id: _Id | None = Field(
        default=None, validate_default=True, description="What is made; required on release."
    )
    quantity: _Qty | None = Field(
        default=None, validate_default=True, description="Planned quantity; required on release."
    )
    unit: str = Field(default="pcs", min_length=1, max_length=32, description="Unit of the quantity.")
    planned_start_ms: _Ms | None = Field(default=None, description="Planned start, ms since 1970 UTC.")
    planned_end_ms: _Ms | None = Field(default=None, description="Planned end, ms since 1970 UTC.")
    bom: list[BomItem] = Field(default_factory=list, description="Bill of materials, per unit of product.")

    @field_validator("product_id", "quantity")
    @classmethod
    def _required_on_release(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.data.get("action") is OrderAction.release:
            raise ValueError("required when action is release")
        return value

    _end_after_start = field_validator("planned_end_ms")(_planned_end_after_start)


class ProductType(MesEvent):
    """``<site or line>/mes/product_type``: a product and how fast it can ideally be made."""

    product_id: _Id = Field(description="Product number, as work orders name it.")
    name: str = Field(default="", max_length=200, description="Readable name.")
    ideal_cycle_time_s: _Qty = Field(
        description="Ideal time per unit at the bottleneck, seconds (ISO 22400 PBT basis)."
    )
    unit: str = Field(default="pcs", min_length=1, max_length=32, description="Unit counted.")


class Break(BaseModel):
    """A planned break inside a shift: planned downtime, not an availability loss."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_ms: _Ms = Field(description="Break start, ms since 1970 UTC.")
    end_ms: _Ms = Field(description="Break end, ms since 1970 UTC.")
    name: str = Field(default="break", max_length=100, description="What it is: lunch, meeting, ...")


class Shift(MesEvent):
    """``<line or site>/mes/shift``: a planned shift with its breaks."""

    shift_id: _Id = Field(description="Shift id, e.g. 2026-11-24-early.")
    name: str = Field(default="", max_length=100, description="Readable name: early, late, night.")
    start_ms: _Ms = Field(description="Shift start, ms since 1970 UTC.")
    end_ms: _Ms = Field(description="Shift end, ms since 1970 UTC.")
    breaks: list[Break] = Field(default_factory=list, description="Planned breaks, inside the shift.")

    @field_validator("end_ms")
    @classmethod
    def _end_after_start(cls, value: int, info: ValidationInfo) -> int:
        start = info.data.get("start_ms")
        if start is not None and value <= start:
            raise ValueError(f"must be after start_ms ({start})")
        return value

    @field_validator("breaks")
    @classmethod
    def _breaks_inside(cls, value: list[Break], info: ValidationInfo) -> list[Break]:
        start, end = info.data.get("start_ms"), info.data.get("end_ms")
        for index, item in enumerate(value):
            if item.end_ms <= item.start_ms:
                raise ValueError(f"break {index} ends before it starts")
            if start is not None and end is not None and not start <= item.start_ms < item.end_ms <= end:
                raise ValueError(f"break {index} is not inside the shift")
        return value


class ProductionCount(MesEvent):
    """``<cell>/mes/production_count``: units made at a cell since the previous count."""

    total: Annotated[int, Field(ge=0, strict=True)] = Field(description="Units made in the period, good and scrap.")
    scrap: Annotated[int, Field(ge=0, strict=True)] = Field(default=0, description="Of those, scrapped.")
    order_id: _Id | None = Field(default=None, description="The order they count for; default the line's running one.")
    period_start_ms: _Ms | None = Field(
        default=None, description="Start of the counted period; default the last count."
    )
    cycle_time_s: float | None = Field(default=None, gt=0, description="Measured time per unit, seconds, if known.")

    @field_validator("scrap")
    @classmethod
    def _scrap_within_total(cls, value: int, info: ValidationInfo) -> int:
        total = info.data.get("total")
        if total is not None and value > total:
            raise ValueError(f"scrap ({value}) is above total ({total})")
        return value

    @field_validator("period_start_ms")
    @classmethod
    def _period_before_timestamp(cls, value: int | None, info: ValidationInfo) -> int | None:
        at = info.data.get("timestamp_ms")
        if value is not None and at is not None and value > at:
            raise ValueError(f"must not be after timestamp_ms ({at})")
        return value

    @property
    def good(self) -> int:
        """Units that passed."""
        return self.total - self.scrap


class MachineState(MesEvent):
    """``<cell>/mes/machine_state``: the cell entered ``state`` at ``timestamp_ms`` (until the next one)."""

    state: Annotated[int, Field(ge=0, le=999_999, strict=True)] = Field(
        description="State code from the state catalog (United Manufacturing Hub ranges: 10000 producing, "
        "40000 unspecified stop, 60000 material, 100000 process, 140000 operator, 160000 planning, 180000 technical)."
    )
    reason_code: str | None = Field(default=None, max_length=64, description="Reason from the reason catalog.")


class DowntimeReason(MesEvent):
    """``<cell>/mes/downtime_reason``: an operator labels a stop, also after the fact (dependants are recomputed).

    A label gives a ``reason_code``, a ``state`` or both: one that only reclassifies the state needs no reason.
    """

    start_ms: _Ms = Field(description="Start of the interval to label, ms since 1970 UTC.")
    end_ms: _Ms = Field(description="End of the interval to label, ms since 1970 UTC.")
    reason_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Reason from the reason catalog; may be left out when state reclassifies the stop.",
    )
    state: Annotated[int, Field(ge=0, le=999_999, strict=True)] | None = Field(
        default=None,
        validate_default=True,
        description="Re-classify the stop as this state code (e.g. 180000 equipment failure); required without "
        "reason_code.",
    )
    operator_id: _Id | None = Field(default=None, description="Who assigned it.")
    comment: str = Field(default="", max_length=1000, description="Free text.")

    @field_validator("end_ms")
    @classmethod
    def _end_after_start(cls, value: int, info: ValidationInfo) -> int:
        start = info.data.get("start_ms")
        if start is not None and value <= start:
            raise ValueError(f"must be after start_ms ({start})")
        return value

    @field_validator("state")
    @classmethod
    def _reason_or_state(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None and info.data.get("reason_code") is None:
            raise ValueError("required when reason_code is absent: a label gives a reason_code, a state or both")
        return value


class InspectionResult(StrEnum):
    """Outcome of an inspection."""

    passed = "pass"
    failed = "fail"


class Severity(StrEnum):
    """How bad a defect is."""

    minor = "minor"
    major = "major"
    critical = "critical"


class Inspection(MesEvent):
    """``<cell>/mes/quality_inspection``: one measured characteristic of one sample."""

    characteristic: _Id = Field(description="What was measured, e.g. fill_volume_ml.")
    value: float | None = Field(default=None, allow_inf_nan=False, description="Measured value; none for attributes.")
    lower_limit: float | None = Field(default=None, allow_inf_nan=False, description="Lower specification limit.")
    upper_limit: float | None = Field(default=None, allow_inf_nan=False, description="Upper specification limit.")
    target: float | None = Field(default=None, allow_inf_nan=False, description="Nominal value.")
    unit: str | None = Field(default=None, max_length=32, description="Unit of value and limits.")
    result: InspectionResult | None = Field(
        default=None, description="pass or fail; when absent, fail outside the limits, else pass."
    )
    defect_type: str | None = Field(default=None, max_length=64, description="What was wrong, for the defect Pareto.")
    severity: Severity | None = Field(default=None, description="minor, major or critical.")
    order_id: _Id | None = Field(default=None, description="Order the sample belongs to.")
    lot_id: _Id | None = Field(default=None, description="Lot the sample belongs to.")
    sample_id: str | None = Field(default=None, max_length=128, description="Sample or serial number.")

    @field_validator("upper_limit")
    @classmethod
    def _limits_ordered(cls, value: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("lower_limit")
        if value is not None and low is not None and value <= low:
            raise ValueError(f"must be above lower_limit ({low})")
        return value

    @property
    def outcome(self) -> InspectionResult:
        """The given result, else judged against the limits."""
        if self.result is not None:
            return self.result
        if self.value is None:
            return InspectionResult.passed
        low, high = self.lower_limit, self.upper_limit
        inside = (low is None or self.value >= low) and (high is None or self.value <= high)
        return InspectionResult.passed if inside else InspectionResult.failed


class LaborAction(StrEnum):
    """Clock on or off."""

    on = "on"
    off = "off"


class Labor(MesEvent):
    """``<cell>/mes/labor``: an operator clocks on or off at a cell, for an order."""

    operator_id: _Id = Field(description="Operator badge or id.")
    action: LaborAction = Field(description="on or off.")
    order_id: _Id | None = Field(default=None, description="Order worked on; default the line's running one.")


class MaterialConsumption(MesEvent):
    """``<cell>/mes/material_consumption``: material from a lot used at a cell for an order."""

    material_id: _Id = Field(description="Material number.")
    lot_id: _Id = Field(description="The lot it came from.")
    quantity: _Qty = Field(description="How much was used.")
    unit: str = Field(default="pcs", min_length=1, max_length=32, description="Unit of the quantity.")
    order_id: _Id | None = Field(default=None, description="Order it was used for; default the line's running one.")


class InputLot(BaseModel):
    """A lot that went into a produced lot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lot_id: _Id = Field(description="Input lot id.")
    material_id: _Id | None = Field(default=None, description="Its material number.")
    quantity: _Qty | None = Field(default=None, description="How much of it went in.")


class LotProduction(MesEvent):
    """``<cell or line>/mes/lot_production``: an output lot made from input lots (genealogy)."""

    lot_id: _Id = Field(description="The produced lot.")
    product_id: _Id | None = Field(default=None, description="What the lot is.")
    quantity: _Qty | None = Field(default=None, description="Lot size.")
    unit: str = Field(default="pcs", min_length=1, max_length=32, description="Unit of the quantity.")
    order_id: _Id | None = Field(default=None, description="Order that made it; default the line's running one.")
    input_lots: list[InputLot] = Field(default_factory=list, description="Lots consumed into it.")

    @field_validator("input_lots")
    @classmethod
    def _not_its_own_input(cls, value: list[InputLot], info: ValidationInfo) -> list[InputLot]:
        lot = info.data.get("lot_id")
        if any(item.lot_id == lot for item in value):
            raise ValueError(f"lot {lot} cannot be its own input")
        return value


class MaintenanceStatus(StrEnum):
    """Where a maintenance work order is in its life, as the CMMS reports it."""

    opened = "opened"
    """Reported or scheduled, work not begun."""
    started = "started"
    """A technician is working on it."""
    closed = "closed"
    """The work is done (the machine is handed back)."""
    cancelled = "cancelled"
    """Withdrawn: a cancelled planned order plans no downtime."""


class MaintenanceOrder(MesEvent):
    """``<machine>/mes/maintenance_order``: a CMMS maintenance work order, each update a new version of it.

    ``maintenance_id`` is the order's stable id: every version of one order (a re-sent row after a
    status change) updates that order, never adds another. The newest version (by ``timestamp_ms``,
    the row's last change) gives the status; a field a version leaves out keeps the value an earlier
    version gave. The machine is the equipment path of the topic (a cell, or a line for line-wide work).
    """

    maintenance_id: _Id = Field(description="The CMMS's work order number, stable across its updates.")
    status: MaintenanceStatus = Field(description="opened, started, closed or cancelled.")
    planned: bool | None = Field(
        default=None,
        description="Planned (preventive, scheduled) work: its window is planned downtime in OEE. False: corrective "
        "work after a fault. Left out: as an earlier version said, else false.",
    )
    fault_code: str | None = Field(
        default=None, min_length=1, max_length=64, description="Fault or failure code from the CMMS catalog."
    )
    description: str | None = Field(default=None, max_length=2000, description="What is wrong or what is to be done.")
    technician: str | None = Field(default=None, min_length=1, max_length=128, description="Who works on it.")
    priority: Annotated[int, Field(ge=1, le=9, strict=True)] | None = Field(
        default=None, description="1 (most urgent) to 9, as the CMMS ranks it (SAP PM uses 1-4)."
    )
    opened_ms: _Ms | None = Field(
        default=None, description="When it was reported or created; default the first version's timestamp_ms."
    )
    started_ms: _Ms | None = Field(
        default=None, description="When work began; default the timestamp_ms of the first version saying started."
    )
    closed_ms: _Ms | None = Field(
        default=None, description="When work ended; default the timestamp_ms of the first version saying closed."
    )
    planned_start_ms: _Ms | None = Field(default=None, description="Scheduled start of the work.")
    planned_end_ms: _Ms | None = Field(default=None, description="Scheduled end of the work.")

    @field_validator("closed_ms")
    @classmethod
    def _closed_after_started(cls, value: int | None, info: ValidationInfo) -> int | None:
        started = info.data.get("started_ms")
        if value is not None and started is not None and value < started:
            raise ValueError(f"must not be before started_ms ({started})")
        return value

    _end_after_start = field_validator("planned_end_ms")(_planned_end_after_start)


EVENT_MODELS: dict[str, type[MesEvent]] = {
    "work_order": WorkOrder,
    "product_type": ProductType,
    "shift": Shift,
    "production_count": ProductionCount,
    "machine_state": MachineState,
    "downtime_reason": DowntimeReason,
    "quality_inspection": Inspection,
    "labor": Labor,
    "material_consumption": MaterialConsumption,
    "lot_production": LotProduction,
    "maintenance_order": MaintenanceOrder,
}
"""The event name after ``mes/`` in a topic (and ``/api/mes/<event>``) → its body model."""

EventName = Literal[
    "work_order",
    "product_type",
    "shift",
    "production_count",
    "machine_state",
    "downtime_reason",
    "quality_inspection",
    "labor",
    "material_consumption",
    "lot_production",
    "maintenance_order",
]
