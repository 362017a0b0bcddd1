"""The serial source (``kind: serial``): scales, barcode and RFID scanners, text instruments on serial ports."""

from __future__ import annotations

from bridges.serial.source import SerialSource
from model.bridges.serial import SerialBridgeConfig
from uns.connect import ClientFactory

__all__ = ["SerialSource", "make_source"]


def make_source(config: SerialBridgeConfig, clients: ClientFactory) -> SerialSource:
    """The Source for a serial connector."""
    return SerialSource(config=config, clients=clients)
