"""The EtherNet/IP bridge's Source: one EnipDevice per controller on the shared PlcSource."""

from __future__ import annotations

from pathlib import Path

from bridges.ethernetip.device import EnipDevice
from bridges.plc import PlcSource
from model.bridges.ethernetip import EthernetIpBridgeConfig

__all__ = ["make_source", "tag_cache_dir"]


def tag_cache_dir(config: EthernetIpBridgeConfig, data_dir: Path | None) -> Path | None:
    """Where the controllers' tag lists are cached: ``<bridge's buffer dir>/enip-tags`` (None: no cache)."""
    if config.edge.buffer_dir is not None:
        return config.edge.buffer_dir / "enip-tags"
    return data_dir / "bridges" / config.name / "enip-tags" if data_dir is not None else None


def make_source(config: EthernetIpBridgeConfig, data_dir: Path | None = None) -> PlcSource:
    """A PlcSource polling every controller of the bridge."""
    cache = tag_cache_dir(config, data_dir)
    devices = [EnipDevice(bridge=config.name, config=device, data_dir=cache) for device in config.devices]
    return PlcSource(name=config.name, kind="ethernetip", devices=devices)
