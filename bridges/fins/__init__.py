"""The Omron FINS bridge (CS, CJ, NJ, NX): our own asyncio FINS client under the shared PlcSource."""

from bridges.fins.client import FinsClient, FinsLink
from bridges.fins.device import FinsPlc, endpoint_of
from bridges.plc.source import PlcSource
from model.bridges.fins import FinsBridgeConfig

__all__ = ["FinsClient", "FinsLink", "FinsPlc", "endpoint_of", "make_source"]


def make_source(config: FinsBridgeConfig) -> PlcSource:
    """The Source of a FINS bridge: one FinsPlc per configured PLC."""
    return PlcSource(
        name=config.name,
        kind="fins",
        devices=[FinsPlc(bridge=config.name, config=device) for device in config.devices],
    )
