"""A broker, historian, MES adapter and web server on loopback, for the intake tests (MQTT and HTTP paths)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from pathlib import Path

import httpx

from model.config import HistorianSection, MesSection
from tests.fixtures.broker import start_broker
from tests.fixtures.reading import rows
from tests.fixtures.running import running_task
from uns.broker import EmbeddedBroker
from uns.connect import local_clients
from uns.historian.service import Historian
from uns.mes.service import MesAdapter
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl
from uns.web import WebServer
from uns.web.mes_api import mes_routes

__all__ = ["IntakeHub", "intake_hub"]


@dataclass
class IntakeHub:
    """The running parts, an MQTT client (``erp``) and an HTTP client on the web server."""

    broker: EmbeddedBroker
    historian: Historian
    mes: MesAdapter
    erp: MqttClient
    http: httpx.AsyncClient

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        """Every row ``sql`` answers on the historian file."""
        return rows(self.historian, sql)


@contextlib.asynccontextmanager
async def intake_hub(
    tmp_path: Path, *, settings: MesSection | None = None, equipment: Collection[str] | None = None
) -> AsyncIterator[IntakeHub]:
    """An ``acme`` hub; ``equipment`` is the plant file's paths (None: no plant)."""
    section = settings or MesSection(kpi_interval_s=60)
    async with contextlib.AsyncExitStack() as stack:
        broker = await stack.enter_async_context(start_broker(tmp_path))
        clients = local_clients(broker)
        historian = await stack.enter_async_context(
            Historian(
                settings=HistorianSection(flush_interval_s=0.05), enterprise="acme", clients=clients, data_dir=tmp_path
            )
        )
        mes = await stack.enter_async_context(
            MesAdapter(
                settings=section, enterprise="acme", clients=clients, writer=historian.writer, equipment=equipment
            )
        )
        routes = mes_routes(mes)
        web = await stack.enter_async_context(
            WebServer(bind="127.0.0.1", port=0, health={}, history=None, routes=routes)
        )
        erp = await stack.enter_async_context(MqttClient(url=BrokerUrl.from_str(str(broker.url)), client_id="erp"))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=web.url))
        for part in (historian, mes, web):
            _ = await stack.enter_async_context(running_task(part))
        yield IntakeHub(broker, historian, mes, erp, http)
