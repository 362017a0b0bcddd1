"""EtherNet/IP (CIP) bridge for ControlLogix, CompactLogix and Micro800: an asyncio client of our own."""

from bridges.ethernetip.device import EnipDevice, endpoint_of
from bridges.ethernetip.source import make_source

__all__ = ["EnipDevice", "endpoint_of", "make_source"]
