"""Lot bookkeeping of the demo business: supplier lots used up in turn, and unique ids for produced lots."""

from __future__ import annotations

import random
from zoneinfo import ZoneInfo

from demo.catalog import Material
from demo.shifts import local_stamp

__all__ = ["LotIds", "RawLots"]

_EPS = 1e-9


class RawLots:
    """The supplier lot of each material in use; the next lot opens when one is used up.

    Lot ids are ``<prefix>-<yymm>-<seq>`` (``PRE-2611-014``): the month the lot was opened and a
    sequence number per material that starts at a seeded value, as a warehouse would number them.

    Args:
        seed: first sequence numbers come from it.
        tz: local time of the month in the ids.
    """

    def __init__(self, *, seed: int, tz: ZoneInfo) -> None:
        self._seed = seed
        self._tz = tz
        self._current: dict[str, tuple[str, float]] = {}
        """material id -> (lot id, amount left)."""
        self._seq: dict[str, int] = {}

    def _open(self, material: Material, now_ms: int) -> tuple[str, float]:
        seq = self._seq.get(material.material_id)
        if seq is None:
            seq = random.Random(f"{self._seed}:{material.material_id}").randint(1, 40)  # noqa: S311 - not crypto
        self._seq[material.material_id] = seq + 1
        lot = f"{material.lot_prefix}-{local_stamp(now_ms, self._tz, '%y%m')}-{seq:03d}"
        return lot, material.lot_size

    def take(self, material: Material, quantity: float, now_ms: int) -> list[tuple[str, float]]:
        """Use ``quantity`` of ``material``: (lot id, amount) per lot it came from, opening lots as needed."""
        out: list[tuple[str, float]] = []
        left = quantity
        while left > _EPS:
            lot, amount = self._current.get(material.material_id) or self._open(material, now_ms)
            used = min(left, amount)
            out.append((lot, round(used, 6)))
            left -= used
            amount -= used
            self._current[material.material_id] = (lot, amount)
            if amount <= _EPS:
                del self._current[material.material_id]
        return out


class LotIds:
    """Ids for produced lots: ``<prefix>-<yymmdd-HHMMSS>`` at the lot's opening, made unique with a suffix.

    The time stamp keeps ids apart across restarts of the demo; the suffix within one run.
    """

    def __init__(self, *, tz: ZoneInfo) -> None:
        self._tz = tz
        self._used: set[str] = set()

    def new(self, prefix: str, now_ms: int) -> str:
        """A lot id not given before in this run."""
        base = f"{prefix}-{local_stamp(now_ms, self._tz)}"
        lot, n = base, 1
        while lot in self._used:
            n += 1
            lot = f"{base}-{n}"
        self._used.add(lot)
        return lot
