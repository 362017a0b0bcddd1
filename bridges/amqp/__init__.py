"""The AMQP 0-9-1 source (``kind: amqp``): a RabbitMQ queue's JSON messages as metrics and MES events."""

from __future__ import annotations

from pathlib import Path

from bridges.amqp.source import AmqpSource
from model.bridges.amqp import AmqpBridgeConfig
from uns.connect import ClientFactory

__all__ = ["AmqpSource", "make_source"]


def make_source(config: AmqpBridgeConfig, clients: ClientFactory, data_dir: Path) -> AmqpSource:
    """The Source for an AMQP connector; its dead letters live under ``data_dir/amqp/<name>``."""
    return AmqpSource(config=config, clients=clients, data_dir=data_dir)
