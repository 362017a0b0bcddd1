"""A ``HostWorker`` for tests: the config of a one-node plant, and the worker serving a block."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from tests.fixtures.hub import plant_for
from uns.host.bounds import HostBounds
from uns.host.remote import HostWorker
from uns.host.worker import WorkerConfig
from uns.mqtt.types import Message

__all__ = ["serving", "worker_config"]


def worker_config(*, rebirth_min_interval_ms: int = 0) -> WorkerConfig:
    """The worker's config for edge node g/n of enterprise acme, default bounds, 1 MiB payloads, WARNING logs."""
    return WorkerConfig(
        plant=plant_for("acme", "g", "n"),
        max_payload_bytes=1 << 20,
        rebirth_min_interval_ms=rebirth_min_interval_ms,
        republish_qos=0,
        bounds=HostBounds(),
        hand_decoded=False,
        log_level=logging.WARNING,
    )


@contextlib.asynccontextmanager
async def serving(
    worker: HostWorker, send: Callable[[Sequence[Message]], Awaitable[None]]
) -> AsyncIterator[asyncio.TaskGroup]:
    """The worker started, its answers sent by ``send`` for the block (its tasks beside the runner), closed after."""
    await worker.start()
    try:
        async with asyncio.TaskGroup() as tasks:
            runner = tasks.create_task(worker.run(send))
            yield tasks
            runner.cancel()
    finally:
        await worker.close()
