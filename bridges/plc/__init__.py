"""The shared PLC layer: the PlcDevice protocol drivers implement and the PlcSource that polls them."""

from bridges.plc.device import GroupRead, PlcDevice, TagProblem
from bridges.plc.source import PlcSource, read_deadline_s

__all__ = ["GroupRead", "PlcDevice", "PlcSource", "TagProblem", "read_deadline_s"]
