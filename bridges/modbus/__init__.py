"""The Modbus bridge: TCP and RTU devices, register maps, poll groups, coalesced reads, writes."""

from bridges.modbus.codec import RegisterCodec
from bridges.modbus.plan import ReadRequest, Span, plan_device, plan_reads
from bridges.modbus.source import ModbusSource, datatype_of

__all__ = ["ModbusSource", "ReadRequest", "RegisterCodec", "Span", "datatype_of", "plan_device", "plan_reads"]
