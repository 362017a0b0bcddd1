"""The one Sparkplug B edge-node engine every bridge runs on: births, deaths, seq, aliases, store-and-forward."""

from bridges.edge.buffer import BufferedBatch, DiskBuffer
from bridges.edge.node import EdgeNode, EdgeStats
from bridges.edge.session import HEALTH_METRICS, EdgeSession
from uns.sparkplug.quality import QUALITY_CODES

__all__ = ["HEALTH_METRICS", "QUALITY_CODES", "BufferedBatch", "DiskBuffer", "EdgeNode", "EdgeSession", "EdgeStats"]
