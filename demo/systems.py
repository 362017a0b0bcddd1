"""The demo's business systems as one long-lived part: the ERP and QMS (databases and REST servers) and the CMMS table.

``async with DemoSystems(directory=...)`` opens their SQLite files and binds each REST server
(127.0.0.1, a free port unless told); ``erp_url``, ``qms_url`` and ``cmms_url`` are then known,
``connectors()`` gives the HTTP and SQL sources that read them, and ``run()`` serves until cancelled. Each server is the
hub's own web server class (uvicorn in this event loop) with only the system's routes and its
``/healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Self

from demo.cmms import Cmms
from demo.connectors import POLL_S, business_connectors
from demo.erp import Erp
from demo.qms import Qms
from model.bridges import BridgeConfig
from uns.web.server import PortSetting, WebServer

__all__ = ["DemoSystems"]

log = logging.getLogger(__name__)

_KEEP_ALIVE_S = 75
"""Idle connections are kept as an ERP's web front (nginx) keeps them: longer than the feeds' polls, so each source
polls on one connection instead of a new one per poll."""


def _port_setting(name: str) -> PortSetting:
    """``sim.erp_port`` or ``sim.qms_port``: what a taken port names (not the web UI's ``--http-port``)."""
    return PortSetting(f"demo {name}", f"sim.{name}_port", f"UNS_SIM__{name.upper()}_PORT")


class DemoSystems:
    """The ERP and QMS of the demo plant, with their REST APIs.

    Args:
        directory: where their SQLite files live (``<data dir>/demo``).
        bind: the servers' address.
        erp_port: the ERP API's port; 0 picks a free one.
        qms_port: the QMS API's port; 0 picks a free one.
    """

    name = "demo-systems"

    def __init__(self, *, directory: Path, bind: str = "127.0.0.1", erp_port: int = 0, qms_port: int = 0) -> None:
        self.directory = directory
        self.erp = Erp(directory=directory)
        self.qms = Qms(directory=directory)
        self.cmms = Cmms(directory=directory)
        self._servers = {
            name: WebServer(
                bind=bind,
                port=port,
                health={},
                history=None,
                routes=routes,
                keep_alive_s=_KEEP_ALIVE_S,
                port_setting=_port_setting(name),
            )
            for name, port, routes in (("erp", erp_port, self.erp.routes()), ("qms", qms_port, self.qms.routes()))
        }
        self._stack = contextlib.AsyncExitStack()

    @property
    def erp_url(self) -> str:
        """The ERP API's base URL (``http://127.0.0.1:<port>``)."""
        return self._servers["erp"].url

    @property
    def qms_url(self) -> str:
        """The QMS API's base URL."""
        return self._servers["qms"].url

    @property
    def cmms_url(self) -> str:
        """The CMMS database's SQLAlchemy URL (``sqlite+aiosqlite:///<data dir>/demo/cmms.sqlite``)."""
        return self.cmms.url

    def connectors(self, host_id: str | None, *, poll_s: float = POLL_S) -> list[BridgeConfig]:
        """The sources that feed the MES from these systems (``host_id``: the primary host they honour)."""
        urls = {"erp_url": self.erp_url, "qms_url": self.qms_url, "cmms_url": self.cmms_url}
        return business_connectors(**urls, host_id=host_id, poll_s=poll_s)

    def health(self) -> dict[str, object]:
        """What each system has taken in, for ``/api/health``."""
        return {"erp": dict(self.erp.counters), "qms": dict(self.qms.counters), "cmms": dict(self.cmms.counters)}

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.erp)
            await stack.enter_async_context(self.qms)
            await stack.enter_async_context(self.cmms)
            for server in self._servers.values():
                await stack.enter_async_context(server)
            self._stack = stack.pop_all()
        log.info(
            "demo business systems: erp %s/api/orders, qms %s/api/inspections, cmms %s",
            self.erp_url,
            self.qms_url,
            self.cmms_url,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def run(self) -> None:
        """Serve both APIs until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            for name, server in self._servers.items():
                tasks.create_task(server.run(), name=f"uns.demo-systems.{name}")
