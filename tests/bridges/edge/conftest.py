"""Fixtures for the edge-node tests: a validating Sparkplug host, a killable TCP proxy, running edge nodes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridges.edge import EdgeNode
from bridges.source import TagSpec
from bridges.testing import ScriptedSource
from model.bridges.common import EdgeNodeConfig
from tests.bridges.edge.spb_host import SpbHost, until
from tests.fixtures.hub import RunningHub
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.running import running
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import DataType

TAGS = [
    TagSpec("press", "Temp", DataType.Double, unit="degC", deadband=0.5),
    TagSpec("press", "Count", DataType.Int64),
    TagSpec("press", "Setpoint", DataType.Float, writable=True),
    TagSpec("press", "Mode", DataType.String),
    TagSpec("oven", "Temp", DataType.Double, unit="degC"),
    TagSpec("oven", "On", DataType.Boolean, writable=True),
]
_groups = itertools.count()


class Proxy:
    """A TCP relay to a broker whose connections a test can cut without a DISCONNECT (a pulled cable)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.kill()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers += [writer, up_writer]
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pump(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.transport.abort()

    def kill(self) -> None:
        """Abort every relayed connection at once."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()


@pytest.fixture
def group() -> str:
    return f"edge{next(_groups)}"


@contextlib.asynccontextmanager
async def spb_host_at(port: int, group: str, *, online: bool = True) -> AsyncIterator[SpbHost]:
    """The checking host ``host-<group>`` on the broker at ``port``; ``online=False``: its STATE says offline."""
    host = SpbHost(port, group, f"host-{group}")
    await host.start(online=online)
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture
async def spb_host(mosquitto: Mosquitto, group: str) -> AsyncIterator[SpbHost]:
    async with spb_host_at(mosquitto.port, group) as host:
        yield host


def edge_config(group: str, **overrides: object) -> EdgeNodeConfig:
    # the oven of TAGS is never read in most tests: births wait only briefly for it
    data: dict[str, object] = {
        "group": group,
        "primary_host_id": f"host-{group}",
        "health_interval_s": 0.2,
        "first_reading_wait_s": 0.2,
    }
    data.update(overrides)
    return EdgeNodeConfig.model_validate(data)


@contextlib.asynccontextmanager
async def running_edge(
    port: int, config: EdgeNodeConfig, source: ScriptedSource, data_dir: Path, node_id: str = "n1"
) -> AsyncIterator[EdgeNode]:
    """An entered EdgeNode whose ``run()`` works in a task; cancelled and exited at the end."""
    clients = network_clients(BrokerUrl(port=port))
    async with running(
        EdgeNode(config=config, node_id=node_id, source=source, clients=clients, data_dir=data_dir), name="test-edge"
    ) as node:
        yield node


@contextlib.asynccontextmanager
async def edge_of_hub(
    port: int, hub: RunningHub, source: ScriptedSource, data_dir: Path, **overrides: object
) -> AsyncIterator[tuple[SpbHost, EdgeNode]]:
    """A running edge node of ``hub``'s group and node, with the checking host as its primary host.

    Our host takes what the node publishes; the checker (a second opinion on the wire) is the one the node
    waits for, so a test can turn it off and on (``host_away``) while the hub keeps running.
    ``overrides``: ``edge_config``'s.
    """
    async with spb_host_at(port, hub.group) as gate:
        config = edge_config(hub.group, primary_host_id=gate.host_id, **overrides)
        async with running_edge(port, config, source, data_dir, hub.node) as edge:
            yield gate, edge


async def host_away(node: EdgeNode, host: SpbHost) -> None:
    """Once the node is born, its primary host goes offline: the node ends that session and waits for the host.

    From here on what the node reads goes to its buffer, until ``host.set_online(True)``.
    """
    await until(lambda: node.online, what="births")
    host.set_online(False)
    await until(lambda: node.stats.connects == 2 and not node.online, what="reconnected, waiting for the host")


@pytest.fixture
def source() -> ScriptedSource:
    return ScriptedSource(name="scripted", tags=TAGS, failing_writes=["On"])
