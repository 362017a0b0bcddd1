"""A float as the decimal it was written as: its shortest repr, ``0.1`` is ``Decimal('0.1')``.

Not ``Decimal(0.1)``, which keeps the binary error (0.1000000000000000055511151231257827...). What a
quantity, a cycle time or a scale was typed as: summed and multiplied so, a result is what a hand computes
(0.4 x 7 is 2.8, not 2.8000000000000003), and its decimals are the ones written.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["as_written"]


def as_written(number: float) -> Decimal:
    """``number`` as the decimal its shortest repr spells (an int as itself)."""
    return Decimal(repr(number))
