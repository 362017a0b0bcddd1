"""Running an HttpSource in a test: its events collected by device and metric, its webhook URL at hand."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

from bridges.http import HttpSource
from bridges.source import DeviceDown, Samples
from model.bridges.http import HttpBridgeConfig
from uns.connect import ClientFactory, network_clients
from uns.mqtt.types import BrokerUrl

__all__ = ["Collected", "config", "poll", "running"]


def config(**fields: object) -> HttpBridgeConfig:
    """A connector named erp with one device taking $.qty of each item, keyed by $.id."""
    base: dict[str, object] = {
        "name": "erp",
        "edge": {"group": "biz"},
        "key_path": "$.id",
        "devices": [{"id": "orders", "metrics": [{"path": "$.qty", "name": "Qty"}]}],
    }
    return HttpBridgeConfig.model_validate({**base, **fields})


def poll(url: str, **fields: object) -> dict[str, object]:
    """A poll section: fast interval and backoff, items under $.items."""
    return {
        "url": url,
        "interval_s": 0.05,
        "items_path": "$.items",
        "backoff_min_s": 0.05,
        "backoff_max_s": 0.2,
        **fields,
    }


@dataclasses.dataclass
class Collected:
    """What the source reported."""

    samples: list[tuple[str, str, object]] = dataclasses.field(default_factory=list)
    downs: list[str] = dataclasses.field(default_factory=list)

    def values(self, device: str = "orders", name: str = "Qty") -> list[object]:
        """Values of one metric, in order."""
        return [value for d, n, value in self.samples if (d, n) == (device, name)]

    def status(self, name: str) -> object:
        """The latest value of a status metric (``Status/<name>``)."""
        values = self.values("api", f"Status/{name}")
        return values[-1] if values else None


@contextlib.asynccontextmanager
async def running(
    cfg: HttpBridgeConfig, data_dir: Path, clients: ClientFactory | None = None
) -> AsyncIterator[tuple[HttpSource, Collected]]:
    """The source entered and its events() consumed into a ``Collected`` until the block ends."""
    source = HttpSource(config=cfg, clients=clients or network_clients(BrokerUrl(port=1)), data_dir=data_dir)
    collected = Collected()

    async def consume() -> None:
        async for event in source.events():
            if isinstance(event, Samples):
                collected.samples.extend((event.device, s.name, s.value) for s in event.samples)
            elif isinstance(event, DeviceDown):
                collected.downs.append(event.reason)

    async with source:
        task = asyncio.create_task(consume(), name="test.http-source")
        try:
            yield source, collected
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
