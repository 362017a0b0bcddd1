"""Config of the GPIO source (``kind: gpio``): digital inputs as states or debounced pulse counters, outputs from DCMD.

Lines are read through libgpiod v2's character device (``/dev/gpiochipN``), by offset or by the
name the board's device tree gives them.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.bridges.common import BridgeBase, check_unique, sparkplug_id

__all__ = ["GpioBridgeConfig", "GpioDevice", "GpioInput", "GpioOutput", "LineId"]

LineId = int | str
"""A line by offset on its chip (0, 1, ...) or by name (``GPIO17``, ``PART_DONE``)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpioInput(_Model):
    """A digital input: its state (Boolean), or a counter of its debounced pulses (Int64)."""

    line: LineId = Field(description="Line offset on the chip, or its name.")
    name: str = Field(min_length=1, description="Sparkplug metric name ('/' makes levels).")
    mode: Literal["state", "counter"] = Field(
        default="state", description="state: the level as a Boolean; counter: pulses counted (part done, reject gate)."
    )
    edge: Literal["rising", "falling"] = Field(
        default="rising", description="counter: which debounced transition counts one pulse (after active_low)."
    )
    active_low: bool = Field(default=False, description="The line is active (true) when its voltage is low.")
    bias: Literal["as_is", "pull_up", "pull_down", "disabled"] = Field(
        default="as_is", description="Internal pull resistor, where the chip has one."
    )
    debounce_ms: float = Field(
        default=10.0,
        ge=0,
        le=10_000,
        description="A new level counts once it has held this long (contact bounce and glitches shorter are "
        "ignored); 0 = every edge.",
    )


class GpioOutput(_Model):
    """A digital output, written by DCMD (a Boolean metric)."""

    line: LineId = Field(description="Line offset on the chip, or its name.")
    name: str = Field(min_length=1, description="Sparkplug metric name ('/' makes levels).")
    active_low: bool = Field(default=False, description="true drives the line low.")
    initial: bool = Field(default=False, description="The value set when the line is taken (and after a reconnect).")


class GpioDevice(_Model):
    """The lines of one GPIO chip (a Sparkplug device)."""

    id: sparkplug_id = Field(description="Sparkplug device id.")
    chip: str = Field(default="/dev/gpiochip0", min_length=1, description="The chip's character device.")
    inputs: list[GpioInput] = Field(default_factory=list, description="Digital inputs.")
    outputs: list[GpioOutput] = Field(default_factory=list, description="Digital outputs (writable by DCMD).")
    backoff_min_s: float = Field(default=0.5, gt=0, description="First retry delay when the chip cannot be opened.")
    backoff_max_s: float = Field(default=30.0, gt=0, description="Retry delay cap.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.inputs and not self.outputs:
            raise ValueError("give inputs, outputs or both")
        every: list[GpioInput | GpioOutput] = [*self.inputs, *self.outputs]
        lines = [str(x.line) for x in every]
        names = [x.name for x in every]
        check_unique("line", lines)
        check_unique("metric name", names)
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("backoff_max_s must be >= backoff_min_s")
        return self


class GpioBridgeConfig(BridgeBase):
    """A GPIO source: chips' lines, each chip a Sparkplug device."""

    kind: Literal["gpio"] = Field(default="gpio", description="Bridge kind.")
    devices: list[GpioDevice] = Field(min_length=1, description="The chips and their lines.")

    @model_validator(mode="after")
    def _unique(self) -> Self:
        check_unique("device id", [device.id for device in self.devices])
        return self
