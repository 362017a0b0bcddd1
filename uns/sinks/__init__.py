"""Sinks: the UNS out to other stores (PostgreSQL, later InfluxDB, SQL insert, REST), acknowledging after commit."""

from uns.sinks.registry import KINDS, build_sink
from uns.sinks.service import Sink, SinkStats
from uns.sinks.writer import SinkWriter, WriteReport

__all__ = ["KINDS", "Sink", "SinkStats", "SinkWriter", "WriteReport", "build_sink"]
