"""Running sinks: ``uns sink <name>`` as its own process, and the configured sinks inside ``uns up``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from model.config import Settings
from model.sinks import SinkConfig
from uns.connect import ClientFactory, network_clients
from uns.errors import ConfigError
from uns.mqtt.types import BrokerUrl
from uns.ready import ready_line
from uns.sinks.registry import build_sink
from uns.sinks.service import Sink

__all__ = ["enter_sinks", "run_sink", "sink_config"]


def sink_config(settings: Settings, name: str, *, client_id: str | None = None) -> SinkConfig:
    """The sink named ``name`` in the settings (with ``client_id`` over its own); ``ConfigError`` if none."""
    for index, config in enumerate(settings.sinks):
        if config.name == name:
            if not config.enabled:
                raise ConfigError(source="settings", path=f"sinks[{index}].enabled", value=False, reason="disabled")
            return config.model_copy(update={"client_id": client_id}) if client_id else config
    names = ", ".join(c.name for c in settings.sinks) or "none configured"
    raise ConfigError(source="settings", path="sinks", value=name, reason=f"no sink of that name (have: {names})")


async def enter_sinks(
    stack: contextlib.AsyncExitStack, configs: Sequence[SinkConfig], clients: ClientFactory, enterprise: str
) -> list[Sink]:
    """Enter every enabled sink of ``configs`` (``uns up``): each is a part to ``run()``."""
    return [
        await stack.enter_async_context(build_sink(config, enterprise=enterprise, clients=clients))
        for config in configs
        if config.enabled
    ]


async def run_sink(
    settings: Settings, enterprise: str, name: str, *, client_id: str | None, ready: Callable[[str], None]
) -> None:
    """``uns sink <name>``: one sink against ``--broker`` / ``UNS_BROKER`` with a persistent QoS 1 session."""
    config = sink_config(settings, name, client_id=client_id)
    url = BrokerUrl.from_str(settings.broker.url or "mqtt://127.0.0.1:1883")
    clients = network_clients(url, ca_file=settings.broker.ca_file)
    async with build_sink(config, enterprise=enterprise, clients=clients) as sink:
        endpoints = {
            "mqtt": url.redacted(),
            "sink": config.name,
            "kind": config.kind,
            "client_id": config.mqtt_client_id,
            "target": sink.writer.target,
            "topics": ",".join(sink.filters),
        }
        ready(ready_line("uns-sink ready", endpoints))
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(sink.run(), name=f"uns.{sink.name}")
