"""Helpers of the FINS tests: a FinsPlc (our driver) for a simulated PLC, from a few tag dicts."""

from __future__ import annotations

from typing import Any

from bridges.fins import FinsPlc
from model.bridges.fins import FinsBridgeConfig, FinsDevice

__all__ = ["bridge_config", "device_config", "plc_for"]


def device_config(port: int, *tags: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A device config dict: id ``pump`` on 127.0.0.1:``port``, UDP, short timeouts."""
    return {"id": "pump", "host": "127.0.0.1", "port": port, "timeout_s": 2.0, "connect_timeout_s": 2.0,
            "tags": list(tags), **fields}  # fmt: skip


def bridge_config(*devices: dict[str, Any]) -> FinsBridgeConfig:
    """A bridge ``omron`` of these devices."""
    return FinsBridgeConfig.model_validate({"name": "omron", "edge": {"group": "g"}, "devices": list(devices)})


def plc_for(port: int, *tags: dict[str, Any], **fields: Any) -> FinsPlc:
    """Our driver for one simulated PLC."""
    return FinsPlc(bridge="omron", config=FinsDevice.model_validate(device_config(port, *tags, **fields)))
