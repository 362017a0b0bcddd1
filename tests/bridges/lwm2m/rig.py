"""An LwM2M server edge node running against a real broker, watched by the independent test host."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

from bridges.edge import EdgeNode
from bridges.lwm2m import Lwm2mSource
from bridges.registry import build_edge_node
from model.bridges.lwm2m import Lwm2mBridgeConfig
from tests.bridges.edge.spb_host import SpbHost, until
from tests.fixtures.running import running as running_component
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import MetricValue
from uns.sparkplug import sparkplug_b_pb2 as pb

__all__ = ["TH", "Rig", "config", "last", "running"]

TH: dict[str, MetricValue] = {"3303/0/5700": 21.5, "3304/0/5700": 40.0, "3303/0/5750": "warehouse", "3/0/4": False}
"""A temperature and humidity sensor: values by path (the aiocoap test client's resources)."""
_ids = itertools.count()


def config(**fields: object) -> Lwm2mBridgeConfig:
    """A server on a free port with one client th-1 (device th1): temperature, humidity, its name, reboot."""
    base: dict[str, object] = {
        "name": "env",
        "edge": {"group": "lwm2m", "health_interval_s": 0.2},
        "port": 0,
        "retry_s": 0.2,
        "status_interval_s": 0.1,  # the counters the tests wait for come within 0.1 s, not up to 1 s
        "expiry_grace_s": 0.0,
        "devices": [
            {
                "endpoint": "th-1",
                "id": "th1",
                "resources": [
                    {"path": "3303/0/5700"},
                    {"path": "3304/0/5700"},
                    {"path": "3303/0/5750", "name": "Location"},
                    {"path": "3/0/4"},
                ],
            }
        ],
    }
    return Lwm2mBridgeConfig.model_validate({**base, **fields})


class Rig:
    """The running node, its source (for the port), and the host checking what it publishes."""

    def __init__(self, node: EdgeNode, source: Lwm2mSource, host: SpbHost) -> None:
        self.node = node
        self.source = source
        self.host = host

    def values(self, name: str, device: str = "th1") -> list[object]:
        """Every value of one metric in DBIRTH and DDATA, in order."""
        return [v for v, _ in self.host.values(device, name, kinds=("DBIRTH", "DDATA"))]

    async def wait_value(self, name: str, value: object, device: str = "th1") -> None:
        """Until the metric's latest value is ``value``."""
        await until(lambda: (self.values(name, device) or [None])[-1] == value, what=f"{device} {name} = {value!r}")

    def dcmd(self, name: str, value: object, datatype: int, device: str = "th1") -> None:
        """A DCMD writing one metric by name."""
        metric = pb.Payload.Metric(name=name, datatype=datatype)
        if isinstance(value, bool):
            metric.boolean_value = value
        elif isinstance(value, float):
            metric.double_value = value
        elif isinstance(value, int):
            metric.long_value = value
        else:
            metric.string_value = str(value)
        self.host.dcmd(self.node.name, device, [metric])


def last(rig: Rig, name: str) -> object:
    """The latest value of a status metric (``Status/<name>``)."""
    values = rig.values(f"Status/{name}", device="server")
    return values[-1] if values else None


@contextlib.asynccontextmanager
async def running(port: int, cfg: Lwm2mBridgeConfig, data_dir: Path) -> AsyncIterator[Rig]:
    """The edge node of ``cfg`` run against the broker on ``port``, with a validating host online."""
    host_id = f"lwm2m-host-{next(_ids)}"
    cfg = cfg.model_copy(update={"edge": cfg.edge.model_copy(update={"primary_host_id": host_id})})
    host = SpbHost(port, cfg.edge.group, host_id)
    await host.start(online=True)
    node = build_edge_node(cfg, network_clients(BrokerUrl(port=port)), data_dir)
    source = node._source  # the test needs the bound CoAP port
    assert isinstance(source, Lwm2mSource)
    try:
        async with running_component(node, name="test.lwm2m-node"):
            await until(lambda: host.count("NBIRTH") > 0, what="NBIRTH")
            yield Rig(node, source, host)
    finally:
        host.stop()
