"""Unit conversions of computed tags, resolved once with pint to ``y = scale * x + offset``."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pint

__all__ = ["Conversion", "UnitError", "check_unit", "conversion"]


class UnitError(ValueError):
    """A unit pint does not know, or two units that do not convert into each other."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """An affine conversion: ``scale * x + offset`` (degC -> degF is 1.8 x + 32, bar -> psi 14.5038 x)."""

    scale: float
    offset: float

    def __call__(self, x: float) -> float:
        """``x`` in the target unit."""
        return self.scale * x + self.offset


_PLANT_UNITS = (
    "bottle = count = _ = bottles",
    "case = count = _ = cases",
    "pallet = count = _ = pallets",
    "piece = count = _ = pieces",
    "bpm = bottle / minute",
    "cpm = case / minute",
)
"""Counted things of a plant (pint's ``count`` is dimensionless), so ``bottles`` and ``bpm`` are units.
``ppm`` stays pint's parts per million: a rate of parts is ``piece / minute``."""


@functools.cache
def _registry() -> pint.UnitRegistry:  # type: ignore[type-arg]
    import pint  # imported when first needed: it takes a third of a second

    # built once (about a second): every conversion is resolved at config load, none per message
    registry: pint.UnitRegistry = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)  # type: ignore[type-arg]
    for definition in _PLANT_UNITS:
        registry.define(definition)
    return registry


def _parse(unit: str) -> pint.Unit:
    import pint

    try:
        return _registry().Unit(unit)
    except (pint.errors.UndefinedUnitError, ValueError, TypeError, AttributeError, AssertionError) as exc:
        raise UnitError(f"unknown unit {unit!r}") from exc
    except Exception as exc:  # pint's parser raises tokenizer errors of its own for text like "m/"
        raise UnitError(f"unknown unit {unit!r} ({type(exc).__name__})") from exc


def check_unit(unit: str) -> None:
    """Raises ``UnitError`` unless pint knows ``unit``."""
    _parse(unit)


@functools.cache
def conversion(source: str, target: str) -> Conversion:
    """The affine function taking values in ``source`` to ``target``.

    Raises:
        UnitError: either unit is unknown, or they measure different things (bar -> degC).
    """
    import pint

    registry = _registry()
    src, dst = _parse(source), _parse(target)
    try:
        zero = float(registry.Quantity(0.0, src).to(dst).magnitude)
        one = float(registry.Quantity(1.0, src).to(dst).magnitude)
    except pint.errors.DimensionalityError as exc:
        raise UnitError(f"{source!r} does not convert to {target!r}: {exc}") from exc
    # 14 significant digits: pint's float path gives 1.7999999999999972 for degC -> degF
    return Conversion(scale=float(f"{one - zero:.14g}"), offset=float(f"{zero:.14g}"))
