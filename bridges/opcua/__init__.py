"""The OPC UA bridge: subscriptions, polling, browse discovery and writes against one OPC UA server."""

from bridges.opcua.source import OpcUaSource, OpcUaStats

__all__ = ["OpcUaSource", "OpcUaStats"]
