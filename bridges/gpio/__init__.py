"""The GPIO source (``kind: gpio``): digital inputs as states and debounced pulse counters, outputs from DCMD."""

from __future__ import annotations

from bridges.gpio.chip import GpiodProvider
from bridges.gpio.lines import LineProvider
from bridges.gpio.source import GpioSource
from model.bridges.gpio import GpioBridgeConfig

__all__ = ["GpioSource", "make_source"]


def make_source(config: GpioBridgeConfig, provider: LineProvider | None = None) -> GpioSource:
    """The Source for a GPIO connector; lines through libgpiod unless another ``provider`` is given."""
    return GpioSource(config=config, provider=provider or GpiodProvider())
