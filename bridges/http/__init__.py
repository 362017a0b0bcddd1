"""The HTTP source (``kind: http``): REST/JSON APIs polled and webhooks received, mapped to metrics and MES events."""

from __future__ import annotations

from pathlib import Path

from bridges.http.source import HttpSource
from model.bridges.http import HttpBridgeConfig
from uns.connect import ClientFactory

__all__ = ["HttpSource", "make_source"]


def make_source(config: HttpBridgeConfig, clients: ClientFactory, data_dir: Path) -> HttpSource:
    """The Source for an HTTP connector; its state and dead letters live under ``data_dir/http/<name>``."""
    return HttpSource(config=config, clients=clients, data_dir=data_dir)
