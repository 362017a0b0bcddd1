"""The demo's pallet scale: an MT-SICS scale on a pty at line 3's palletizer, weighing each pallet the model completes.

When the palletizer's pallet counter moves, a pallet is put on the scale (its gross weight drawn
from the seed), reads dynamic while it settles, stays a few seconds, and is taken off. The serial
source's demo connector polls it and makes each stable load a ``lot_production`` event (the pallet's
lot, its weight in kg) for the MES.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

from bridges.sim.layout import GROUP
from bridges.sim.serial_scale import SimulatedScale
from model.bridges import EdgeNodeConfig
from model.bridges.serial import SerialBridgeConfig

if TYPE_CHECKING:
    from bridges.sim.service import SimulatedPlant

__all__ = ["PALLETIZER_PATH", "SCALE_DEVICE", "SERIAL_NODE", "PalletScale"]

log = logging.getLogger(__name__)

SERIAL_NODE = "serial-palletizing"
"""The demo's serial edge node."""
SCALE_DEVICE = "scale"
"""Its Sparkplug device: the scale under the palletizer's discharge conveyor."""
PALLETIZER_PATH = "acme/dallas/packaging/line3/palletizer"
"""Where the scale's metrics and the pallets' lots appear."""
_SETTLE_S = 1.5
_ON_SCALE_S = 4.0
_PERIOD_S = 1.0  # how often the conveyor looks for a finished pallet: one comes every few minutes
_EMPTY_KG = 25.0  # a EUR pallet
_CASE_KG = 12.9  # 24 x 0.5 l PET and the case: 60 cases a pallet, ~800 kg


class PalletScale:
    """The scale and the connector that reads it.

    Args:
        pallets: the palletizer's completed-pallet counter now (the model's good count).
        seed: seeds the pallets' weights.
        settle_s: how long a pallet reads dynamic after it is put down.
        on_scale_s: how long it stays once settled (and the scale stays empty after it).
    """

    name = "pallet-scale"

    def __init__(
        self, *, pallets: Callable[[], int], seed: int, settle_s: float = _SETTLE_S, on_scale_s: float = _ON_SCALE_S
    ) -> None:
        self._pallets = pallets
        self._settle_s = settle_s
        self._on_scale_s = on_scale_s
        self._rng = random.Random(seed ^ 0x5CA1E)  # noqa: S311  (simulated weights, not crypto)
        self.scale = SimulatedScale()
        self._waiting: collections.deque[float] = collections.deque(maxlen=10)
        self.weighed = 0
        """Pallets put on the scale so far."""

    @classmethod
    def at_palletizer(cls, sim: SimulatedPlant, *, seed: int) -> PalletScale:
        """The scale fed by the simulated plant's palletizer (its completed-pallet counter)."""
        return cls(pallets=lambda: sim.model.machine_snapshot("palletizer").good_count, seed=seed)

    async def __aenter__(self) -> Self:
        await self.scale.__aenter__()
        log.info("simulated pallet scale (MT-SICS) at %s", self.scale.port)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.scale.__aexit__(*exc_info)

    def bridge_config(self) -> SerialBridgeConfig:
        """The serial connector of the demo: polls the scale, one lot per pallet weighed."""
        return SerialBridgeConfig.model_validate(
            {
                "name": SERIAL_NODE,
                "edge": EdgeNodeConfig(group=GROUP, primary_host_id="uns-hub").model_dump(),
                "devices": [
                    {
                        "id": SCALE_DEVICE,
                        "port": self.scale.port,
                        "protocol": {"kind": "mt_sics", "unit": "kg"},
                        "poll": {"interval_s": 0.5, "timeout_s": 1.0},
                        "events": [
                            {
                                "event": "lot_production",
                                "equipment_path": PALLETIZER_PATH,
                                "trigger": "stable_load",
                                "min_load": 100.0,
                                "fields": {"lot_id": "PAL-L3-${time}", "quantity": "${weight}", "unit": "${unit}"},
                            }
                        ],
                    }
                ],
            }
        )

    async def run(self) -> None:
        """Weigh each pallet the model completes, until cancelled."""
        last = self._pallets()
        self._waiting.append(self._pallet_kg())  # the pallet already on its way when the demo starts
        while True:
            now = self._pallets()
            for _ in range(min(10, (now - last) % (1 << 32))):  # the model's counter is 32-bit and rolls over
                self._waiting.append(self._pallet_kg())
            last = now
            if self._waiting:
                await self._weigh(self._waiting.popleft())
            await asyncio.sleep(_PERIOD_S)

    def _pallet_kg(self) -> float:
        return round(_EMPTY_KG + 60 * _CASE_KG * self._rng.uniform(0.985, 1.015), 1)

    async def _weigh(self, kg: float) -> None:
        self.scale.load(kg, settle_s=self._settle_s)
        self.weighed += 1
        await asyncio.sleep(self._settle_s + self._on_scale_s)
        self.scale.load(0.0)
        await asyncio.sleep(self._on_scale_s)  # the empty scale is read before the next pallet
