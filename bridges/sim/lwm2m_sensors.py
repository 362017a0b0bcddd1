"""The demo's warehouse climate sensors: LwM2M clients that register with the hub's LwM2M server and report.

Two temperature and humidity sensors (IPSO 3303 and 3304) in the finished-goods warehouse of the
environmental monitoring area, each an aiocoap LwM2M client (``bridges.sim.lwm2m_client``). They
behave like field devices: they register (retrying with backoff until the server answers), update
before their lifetime runs out, register again when the server has forgotten them, and de-register
when stopped. Their values follow a slow daily swing with a little noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from typing import Self

import aiocoap.error  # type: ignore[import-untyped]  # no py.typed in aiocoap 0.4.17

from bridges.lwm2m.udp import claim_port
from bridges.sim.layout import GROUP
from bridges.sim.lwm2m_client import Lwm2mClient
from model.bridges import EdgeNodeConfig
from model.bridges.lwm2m import Lwm2mBridgeConfig
from uns.backoff import Backoff
from uns.clock import now_ms

__all__ = ["LWM2M_NODE", "SENSORS", "WarehouseSensors"]

log = logging.getLogger(__name__)

LWM2M_NODE = "lwm2m-warehouse"
"""The demo's LwM2M server edge node."""
SENSORS = {"climate-north": "urn:dev:acme:wh-th-01", "climate-south": "urn:dev:acme:wh-th-02"}
"""Cell id (the Sparkplug device) -> the sensor's LwM2M endpoint name."""
_LIFETIME_S = 60
_PERIOD_S = 2.0
_DAY_MS = 86_400_000


class WarehouseSensors:
    """The sensors, and the config of the LwM2M server edge node that reads them.

    Args:
        bind: the address the server binds and the sensors reach it on (the demo's bind address).
        seed: seeds the values' noise.
    """

    name = "lwm2m-sensors"

    def __init__(self, *, bind: str, seed: int) -> None:
        self._host = "127.0.0.1" if bind in ("0.0.0.0", "", "::") else bind  # noqa: S104  (a wildcard bind is reached on loopback)
        self._bind = bind
        self.port = 0
        self._rng = random.Random(seed)  # noqa: S311  (simulation noise, not crypto)
        self.clients = {
            cell: Lwm2mClient(
                endpoint=endpoint,
                resources={"3303/0/5700": 20.0, "3304/0/5700": 45.0, "3303/0/5750": cell, "3/0/4": False},
                lifetime_s=_LIFETIME_S,
                host=self._host,
            )
            for cell, endpoint in SENSORS.items()
        }
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            for client in self.clients.values():
                await stack.enter_async_context(client)
            self.port = claim_port(self._bind, 0)  # the sensors must know it before the server starts
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    @property
    def server_url(self) -> str:
        """Where the sensors register."""
        return f"coap://{self._host}:{self.port}/rd"

    def bridge_config(self) -> Lwm2mBridgeConfig:
        """The LwM2M server edge node that the sensors register with (device ids are the cell ids)."""
        devices = [
            {
                "endpoint": endpoint,
                "id": cell,
                "resources": [
                    {"path": "3303/0/5700", "name": "Temperature"},
                    {"path": "3304/0/5700", "name": "Humidity"},
                    {"path": "3303/0/5750", "name": "Location"},
                    {"path": "3/0/4", "name": "Command/Reboot"},
                ],
            }
            for cell, endpoint in SENSORS.items()
        ]
        return Lwm2mBridgeConfig.model_validate(
            {
                "name": LWM2M_NODE,
                "edge": EdgeNodeConfig(group=GROUP, primary_host_id="uns-hub"),
                "host": self._bind,
                "port": self.port,
                "accept": "senml_cbor",
                "devices": devices,
            }
        )

    async def run(self) -> None:
        """Register every sensor and report until cancelled; then de-register them."""
        try:
            async with asyncio.TaskGroup() as tg:
                for cell, client in self.clients.items():
                    tg.create_task(self._sensor(cell, client), name=f"sim.lwm2m.{cell}")
        finally:
            for client in self.clients.values():
                if client.location is not None:
                    with contextlib.suppress(TimeoutError, OSError, aiocoap.error.Error):  # the server may be gone
                        async with asyncio.timeout(1.0):
                            await client.deregister()

    async def _sensor(self, cell: str, client: Lwm2mClient) -> None:
        backoff = Backoff(min_s=0.2, max_s=10.0)
        phase = self._rng.uniform(0, 2 * math.pi)
        next_update = 0.0
        loop = asyncio.get_running_loop()
        while True:
            if client.location is None or loop.time() >= next_update:
                if await self._register_or_update(cell, client):
                    backoff.succeeded()
                    next_update = loop.time() + _LIFETIME_S / 2
                else:
                    await asyncio.sleep(backoff.failed())
                    continue
            day = 2 * math.pi * (now_ms() % _DAY_MS) / _DAY_MS + phase
            client.set("3303/0/5700", round(19.0 + 3.0 * math.sin(day) + self._rng.gauss(0, 0.1), 2))
            client.set("3304/0/5700", round(50.0 - 8.0 * math.sin(day) + self._rng.gauss(0, 0.3), 1))
            await asyncio.sleep(_PERIOD_S)

    async def _register_or_update(self, cell: str, client: Lwm2mClient) -> bool:
        """Register (or update a live registration); False if the server did not take it."""
        try:
            async with asyncio.timeout(5.0):
                if client.location is not None:
                    answer = await client.update()
                    if str(answer.code).startswith("2."):
                        return True
                    client.location = None  # the server forgot us (it restarted): register again
                answer = await client.register(self._host, self.port)
        except (TimeoutError, OSError, aiocoap.error.Error) as exc:
            log.debug("simulated %s: no LwM2M server yet at %s: %s", cell, self.server_url, exc)
            return False
        return str(answer.code).startswith("2.")
