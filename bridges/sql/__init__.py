"""The SQL source (``kind: sql``): polled queries with a saved watermark, rows to metrics or MES events."""

from __future__ import annotations

from pathlib import Path

from bridges.sql.source import STATUS_METRICS, SqlSource
from model.bridges.sql import SqlBridgeConfig
from uns.connect import ClientFactory

__all__ = ["STATUS_METRICS", "SqlSource", "make_source", "state_path"]


def state_path(config: SqlBridgeConfig, data_dir: Path) -> Path:
    """Where the connector keeps its cursors and dead letters: beside its edge node's buffer."""
    return (config.edge.buffer_dir or data_dir / "bridges" / config.node_id) / "sql-state.sqlite"


def make_source(config: SqlBridgeConfig, clients: ClientFactory | None, data_dir: Path) -> SqlSource:
    """The source of one ``kind: sql`` connector."""
    return SqlSource(config=config, clients=clients, state_path=state_path(config, data_dir))
