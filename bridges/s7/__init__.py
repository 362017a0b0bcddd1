"""The Siemens S7 bridge: S7-300/400/1200/1500 and LOGO! over classic S7 (PUT/GET), S7CommPlus experimental."""

from bridges.plc.device import PlcDevice
from bridges.plc.source import PlcSource
from bridges.s7.device import S7Plc
from bridges.s7.tia import device_tags
from model.bridges.s7 import S7BridgeConfig

__all__ = ["S7Plc", "make_source"]


def make_source(config: S7BridgeConfig) -> PlcSource:
    """The Source of an S7 bridge: one device per PLC (``S7Plc``, or ``S7PlusPlc`` for protocol s7commplus).

    DB sources named in ``db_sources`` are read here; a file that does not parse raises ``ConfigError``
    naming the file, line and member.
    """
    devices: list[PlcDevice] = []
    for index, device in enumerate(config.devices):
        if device.protocol == "s7commplus":
            from bridges.s7.plus import S7PlusPlc  # experimental: s7commplus is imported only when used

            devices.append(S7PlusPlc(bridge=config.name, config=device))
        else:
            devices.append(S7Plc(bridge=config.name, config=device, tags=device_tags(device, f"devices[{index}]")))
    return PlcSource(name=config.name, kind="s7", devices=devices)
