"""What every PLC device config shares (S7, EtherNet/IP, SLMP, FINS): timeouts, backoff, poll groups."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.bridges.common import sparkplug_id

__all__ = ["PlcDeviceBase", "PlcLinkSettings", "PlcTagBase"]


class PlcLinkSettings(BaseModel):
    """How long to wait for a PLC, and how to back off when it is down or refuses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="One request's timeout. A poll that gets no answer in 2 x this + 1 s means the connection "
        "is dead (a half-open TCP connection: PLC rebooted, cable pulled): the device goes down and is reconnected.",
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Timeout of connecting (TCP connect plus the protocol's own handshake)."
    )
    backoff_min_s: float = Field(
        default=0.5, gt=0, description="First reconnect delay after the PLC went down; doubles on each failure."
    )
    backoff_max_s: float = Field(
        default=30.0,
        gt=0,
        description="Cap of the reconnect delay (jitter lowers it by up to half). A PLC that refuses the "
        "connection (wrong rack/slot, access disabled, password) is retried only this often.",
    )

    @model_validator(mode="after")
    def _check_backoff(self) -> Self:
        if self.backoff_min_s > self.backoff_max_s:
            raise ValueError(f"backoff_min_s ({self.backoff_min_s}) exceeds backoff_max_s ({self.backoff_max_s})")
        return self


class PlcDeviceBase(PlcLinkSettings):
    """One PLC = one Sparkplug device; each driver's device config inherits these fields."""

    id: sparkplug_id = Field(description="Sparkplug device id.")
    poll_groups: dict[str, float] = Field(
        default_factory=lambda: {"default": 1.0},
        description="Poll group name -> interval in seconds; each tag names its group (default: 'default').",
    )

    @model_validator(mode="after")
    def _check_groups(self) -> Self:
        if not self.poll_groups:
            raise ValueError(f"device {self.id}: poll_groups is empty")
        for group, interval in self.poll_groups.items():
            if interval <= 0:
                raise ValueError(f"device {self.id}: poll group {group!r}: interval must be > 0 (got {interval})")
        return self


class PlcTagBase(BaseModel):
    """Fields a driver's tag config may inherit: the metric it becomes and how it is polled (address: the driver's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Sparkplug metric name ('/' makes levels).")
    unit: str | None = Field(default=None, description="Engineering unit.")
    poll: str = Field(default="default", description="Poll group name (one of the device's poll_groups).")
    writable: bool = Field(default=False, description="A DCMD may write it.")
    deadband: float = Field(default=0.0, ge=0, description="Report by exception: smallest absolute change to send.")
    description: str = Field(default="", description="Free text describing the tag (the TagSpec description).")
