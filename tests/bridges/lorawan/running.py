"""A LoRaWAN connector running as a real edge node in a test, beside an independent Sparkplug host."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from bridges.edge import EdgeNode
from bridges.lorawan import LorawanSource, make_source
from model.bridges.lorawan import LorawanBridgeConfig
from tests.bridges.edge.spb_host import SpbHost
from tests.fixtures.running import running as running_component
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl

__all__ = ["last", "running"]


def last(host: SpbHost, device: str, name: str) -> object:
    """The newest value the host saw of a metric, or None.

    Newest by metric timestamp; on a tie a live value beats a historical one, then the later message wins.
    """
    newest: tuple[tuple[int, bool], object] | None = None
    for message in host.of("DBIRTH", device) + host.of("DDATA", device):
        for metric, value, historical, timestamp in message.resolved:
            if metric == name and (newest is None or (timestamp, not historical) >= newest[0]):
                newest = ((timestamp, not historical), value)
    return newest[1] if newest is not None else None


@contextlib.asynccontextmanager
async def running(config: LorawanBridgeConfig, port: int, data_dir: Path) -> AsyncIterator[LorawanSource]:
    """The connector's edge node on the broker at ``port`` (its Sparkplug side), until the block ends."""
    clients = network_clients(BrokerUrl(port=port))
    source = make_source(config, clients)
    node = EdgeNode(config=config.edge, node_id=config.node_id, source=source, clients=clients, data_dir=data_dir)
    async with running_component(node, name=f"test.lorawan.{config.name}"):
        yield source
