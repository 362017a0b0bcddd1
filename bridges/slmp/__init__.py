"""The SLMP bridge (Mitsubishi MC protocol): Q, L, iQ-R and iQ-F/FX5 PLCs over 3E/4E binary frames, TCP or UDP."""

from bridges.plc.source import PlcSource
from bridges.slmp.device import SlmpPlc, datatype_of
from model.bridges.slmp import SlmpBridgeConfig

__all__ = ["SlmpPlc", "datatype_of", "make_source"]


def make_source(config: SlmpBridgeConfig) -> PlcSource:
    """The Source of an SLMP bridge: one ``SlmpPlc`` per device under the shared PLC poller."""
    return PlcSource(
        name=config.name, kind="slmp", devices=[SlmpPlc(bridge=config.name, config=device) for device in config.devices]
    )
