"""The demo plant's business master data: products, bills of materials, raw materials, inspections, per line.

What an integrator would load from the ERP and QMS: line1 fills cola in PET 0.5 l bottles, line2
in glass 0.33 l bottles, line3 packs line1's bottles into cases and pallets. Ideal cycle times
come from the simulated machines' nameplate rates (``mes_rules.demo_ideal_cycle_times``), so the
product types match what the sim can make; orders are sized at the rates the machines run at.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Literal

from bridges.sim.mes_rules import DEMO_NAMEPLATE_HEADROOM, demo_ideal_cycle_times
from bridges.sim.plant import DEMO_LINES, LineSpec
from model.equipment import Plant

__all__ = [
    "RECIPES",
    "BomLine",
    "LineKind",
    "LineRecipe",
    "LineSetup",
    "Material",
    "SyrupRecipe",
    "demo_line_setups",
]

LineKind = Literal["bottling", "palletizing"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Material:
    """A material the lines use, and how much one supplier lot of it holds."""

    material_id: str
    lot_prefix: str
    """Raw lot ids are ``<prefix>-<yymm>-<seq>`` (``PRE-2611-001``)."""
    unit: str
    lot_size: float
    """How much one raw lot holds: a new lot is opened when it is used up."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BomLine:
    """One material per unit of product, consumed at one cell."""

    material: Material
    per_unit: float
    cell: str
    """Cell id where it is consumed."""
    made: Literal["raw", "syrup", "bottled"] = "raw"
    """raw: supplier lots; syrup: the line's syrup batches; bottled: lots made on ``LineRecipe.feeds_from``."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SyrupRecipe:
    """A syrup batch (level 1 of the genealogy), mixed from raw lots."""

    material: Material
    batch_size: float
    """Litres per batch."""
    inputs: tuple[tuple[Material, float], ...]
    """Raw material and how much of it goes into one batch."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LineRecipe:
    """What a line makes, from what, and what the QMS samples there."""

    line_id: str
    kind: LineKind
    product_id: str
    product_name: str
    unit: str
    lot_prefix: str
    lot_size: int
    """Output units per produced lot (bottles per bottled lot, 1 pallet per pallet lot)."""
    bom: tuple[BomLine, ...]
    units_per_output: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Cell id -> counted units in one line output unit (line3's case-packer: 60 cases per pallet)."""
    syrup: SyrupRecipe | None = None
    feeds_from: str | None = None
    """Line id whose produced lots this line consumes (line3 palletizes line1's bottles)."""
    fill: tuple[str, float] | None = None
    """(cell id, target ml) of the fill-volume sample."""
    torque_cell: str | None = None
    """Cell whose live ``data/Torque`` is sampled as cap torque."""
    visual: tuple[str, tuple[str, ...]] | None = None
    """(cell id, defect types) of the visual inspection."""


def _m(material_id: str, prefix: str, unit: str, lot_size: float) -> Material:
    return Material(material_id=material_id, lot_prefix=prefix, unit=unit, lot_size=lot_size)


_SYRUP = SyrupRecipe(
    material=_m("SYRUP-COLA", "SYR", "l", 1000.0),
    batch_size=1000.0,
    inputs=(
        (_m("SUGAR-GRAN", "SUG", "kg", 1000.0), 110.0),
        (_m("WATER-TREATED", "WTR", "l", 2000.0), 870.0),
        (_m("CONC-COLA", "CNC", "l", 100.0), 20.0),
    ),
)

RECIPES: Mapping[str, LineRecipe] = MappingProxyType(
    {
        "line1": LineRecipe(
            line_id="line1", kind="bottling", product_id="COLA-PET-050", product_name="Cola PET 0.5 l",
            unit="bottles", lot_prefix="B1", lot_size=300,
            bom=(
                BomLine(material=_m("PREFORM-PET-28G", "PRE", "pcs", 6000.0), per_unit=1.0, cell="filler"),
                BomLine(material=_SYRUP.material, per_unit=0.09, cell="filler", made="syrup"),
                BomLine(material=_m("CAP-PCO-28", "CAP", "pcs", 8000.0), per_unit=1.0, cell="capper"),
                BomLine(material=_m("LABEL-COLA-050", "LBL", "pcs", 10000.0), per_unit=1.0, cell="labeler"),
            ),
            syrup=_SYRUP, fill=("filler", 500.0), torque_cell="capper",
            visual=("labeler", ("label_skew", "label_missing", "cap_missing")),
        ),
        "line2": LineRecipe(
            line_id="line2", kind="bottling", product_id="COLA-GLS-033", product_name="Cola glass 0.33 l",
            unit="bottles", lot_prefix="B2", lot_size=240,
            bom=(
                BomLine(material=_m("BOTTLE-GLS-033", "GLS", "pcs", 5000.0), per_unit=1.0, cell="rinser"),
                BomLine(material=_SYRUP.material, per_unit=0.06, cell="filler2", made="syrup"),
                BomLine(material=_m("CROWN-26", "CRN", "pcs", 8000.0), per_unit=1.0, cell="capper2"),
            ),
            syrup=_SYRUP, fill=("filler2", 330.0), torque_cell="capper2",
            visual=("capper2", ("cap_missing", "crown_crooked", "fill_low")),
        ),
        "line3": LineRecipe(
            line_id="line3", kind="palletizing", product_id="PAL-COLA-PET050",
            product_name="Pallet, 60 cases x 24 cola PET 0.5 l", unit="pallets", lot_prefix="PAL", lot_size=1,
            bom=(
                BomLine(material=_m("COLA-PET-050", "B1", "bottles", 1e12), per_unit=1440.0, cell="case-packer",
                        made="bottled"),
                BomLine(material=_m("CARTON-24", "CTN", "pcs", 300.0), per_unit=60.0, cell="case-packer"),
                BomLine(material=_m("PALLET-EUR", "EUR", "pcs", 20.0), per_unit=1.0, cell="palletizer"),
                BomLine(material=_m("FILM-STRETCH", "FLM", "kg", 12.0), per_unit=0.4, cell="wrapper"),
            ),
            units_per_output={"case-packer": 60.0}, feeds_from="line1",
            visual=("wrapper", ("film_torn", "pallet_unstable")),
        ),
    }
)  # fmt: skip
"""The demo lines' recipes, by line id."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LineSetup:
    """A recipe placed in a plant: the line's paths and its ideal cycle time."""

    path: str
    """Line path, ``acme/dallas/bottling/line1``."""
    site_path: str
    output_cell: str
    """Path of the cell whose ``Production/GoodCount`` is the line's output."""
    recipe: LineRecipe
    nominal_cycle_time_s: float
    """Seconds per output unit at the running rate of the line's slowest machine: what orders are sized by."""
    product_cycle_time_s: float
    """Seconds per output unit at the nameplate rate of the line's fastest machine: the product type's ideal
    cycle time, so no machine of the line runs above 100 % performance (a machine draining its buffer runs
    at its own rate)."""
    torque_target: float | None
    """The capper's running torque in the sim, N·m."""

    def cell(self, cell_id: str) -> str:
        """The path of one of the line's cells."""
        return f"{self.path}/{cell_id}"


def _torque(spec: LineSpec, cell: str | None) -> float | None:
    for machine in spec.machines:
        if machine.id == cell:
            return next((pv.running for pv in machine.process if pv.name == "Torque"), None)
    return None


def demo_line_setups(plant: Plant, lines: Sequence[LineSpec] = DEMO_LINES) -> list[LineSetup]:
    """The recipes of the lines both the plant file and the simulated plant have, in line path order."""
    cycle = demo_ideal_cycle_times(plant, lines)
    specs = {spec.id: spec for spec in lines}
    setups = []
    for line_path, output in sorted(plant.line_outputs().items()):
        line_id = line_path.rsplit("/", 1)[-1]
        recipe, spec = RECIPES.get(line_id), specs.get(line_id)
        if recipe is None or spec is None:
            continue
        per_cell = [
            cycle[f"{line_path}/{m.id}"] * recipe.units_per_output.get(m.id, 1.0)
            for m in spec.machines
            if f"{line_path}/{m.id}" in cycle
        ]
        if not per_cell:
            continue
        setups.append(
            LineSetup(
                path=line_path,
                site_path="/".join(line_path.split("/")[:2]),
                output_cell=output,
                recipe=recipe,
                nominal_cycle_time_s=round(max(per_cell) * DEMO_NAMEPLATE_HEADROOM, 4),
                product_cycle_time_s=round(min(per_cell), 4),
                torque_target=_torque(spec, recipe.torque_cell),
            )
        )
    return setups
