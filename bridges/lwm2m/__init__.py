"""The LwM2M server (``kind: lwm2m``): LwM2M 1.x clients over CoAP as Sparkplug devices of one edge node."""

from __future__ import annotations

from pathlib import Path

from bridges.lwm2m.source import Lwm2mSource
from model.bridges.lwm2m import Lwm2mBridgeConfig

__all__ = ["Lwm2mSource", "make_source"]


def make_source(config: Lwm2mBridgeConfig, data_dir: Path) -> Lwm2mSource:
    """The Source for an LwM2M server connector; its registrations are kept under ``data_dir/lwm2m/<name>``."""
    return Lwm2mSource(config=config, data_dir=data_dir)
