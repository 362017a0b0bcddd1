"""``uns up`` and the single-component commands: assemble parts, print the ready line, run until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from model.config import Settings
from model.equipment import Plant
from uns.broker import EmbeddedBroker, load_broker_config
from uns.connect import ClientFactory, local_clients, network_clients
from uns.host.service import SparkplugHost
from uns.mqtt.types import BrokerUrl
from uns.status_http import StatusServer

__all__ = ["Part", "ReadyCallback", "run_broker", "run_host", "run_up"]

log = logging.getLogger(__name__)

ReadyCallback = Callable[[str], None]


class Part(Protocol):
    """A long-lived component: entered by the caller, then ``run()`` until cancelled."""

    name: str

    async def run(self) -> None:
        """Work until cancelled."""
        ...


async def _run_parts(parts: list[Part]) -> None:
    async with asyncio.TaskGroup() as tasks:
        for part in parts:
            tasks.create_task(part.run(), name=f"uns.{part.name}")


async def _enter_broker(stack: contextlib.AsyncExitStack, settings: Settings) -> EmbeddedBroker:
    section = settings.broker
    config = load_broker_config(
        section.config,
        bind=section.bind,
        mqtt_port=section.mqtt_port,
        ws_port=section.ws_port,
        tls_port=section.tls_port,
        max_payload_bytes=section.max_payload_bytes,
    )
    return await stack.enter_async_context(EmbeddedBroker(config=config, data_dir=settings.data_dir))


def _endpoints_line(endpoints: Mapping[str, str | None], notes: list[str]) -> str:
    shown = " ".join(f"{name}={value}" for name, value in endpoints.items() if value)
    return "uns-hub ready: " + shown + "".join(f"  [{note}]" for note in notes)


async def run_up(settings: Settings, plant: Plant, *, ready: ReadyCallback) -> None:
    """The whole hub in one process: broker (unless external), Sparkplug host, status HTTP."""
    async with contextlib.AsyncExitStack() as stack:
        parts: list[Part] = []
        notes: list[str] = []
        endpoints: dict[str, str | None] = {}
        clients: ClientFactory
        max_payload = settings.broker.max_payload_bytes or 1_048_576
        if settings.broker.url:
            url = BrokerUrl.from_str(settings.broker.url)
            clients = network_clients(url)
            endpoints["mqtt"] = url.redacted()
            notes.append("external broker")
        else:
            broker = await _enter_broker(stack, settings)
            parts.append(broker)
            clients = local_clients(broker)
            endpoints["mqtt"] = str(broker.url)
            endpoints["ws"] = broker.ws_url
            endpoints["mqtts"] = str(broker.tls_url) if broker.tls_url else None
            max_payload = broker.config.limits.max_payload_bytes
            if broker.anonymous:
                notes.append("ANONYMOUS ACCESS ON: demo only, see broker.yaml")
        host = await stack.enter_async_context(
            SparkplugHost(settings=settings.host, plant=plant, clients=clients, max_payload_bytes=max_payload)
        )
        parts.append(host)
        http = await stack.enter_async_context(
            StatusServer(
                bind=settings.web.bind,
                port=settings.web.http_port,
                sources={"host": host.core.health},
            )
        )
        parts.append(http)
        endpoints["http"] = http.url
        endpoints["state"] = host.state_topic
        endpoints["data"] = str(settings.data_dir)
        ready(_endpoints_line(endpoints, notes))
        await _run_parts(parts)


async def run_broker(settings: Settings, *, ready: ReadyCallback) -> None:
    """``uns broker``: only the embedded broker."""
    async with contextlib.AsyncExitStack() as stack:
        broker = await _enter_broker(stack, settings)
        notes = ["ANONYMOUS ACCESS ON: demo only, see broker.yaml"] if broker.anonymous else []
        tls = str(broker.tls_url) if broker.tls_url else None
        ready(_endpoints_line({"mqtt": str(broker.url), "ws": broker.ws_url, "mqtts": tls}, notes))
        await _run_parts([broker])


async def run_host(settings: Settings, plant: Plant, *, ready: ReadyCallback) -> None:
    """``uns host``: the Sparkplug host against the broker named by ``--broker`` / ``UNS_BROKER``."""
    url = BrokerUrl.from_str(settings.broker.url or "mqtt://127.0.0.1:1883")
    max_payload = settings.broker.max_payload_bytes or 1_048_576
    async with SparkplugHost(
        settings=settings.host, plant=plant, clients=network_clients(url), max_payload_bytes=max_payload
    ) as host:
        ready(_endpoints_line({"mqtt": url.redacted(), "state": host.state_topic}, []))
        await _run_parts([host])
