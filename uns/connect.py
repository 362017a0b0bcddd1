"""How a component gets its MQTT client: over a socket to any broker, or in-process in the embedded one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message, OnConnect, PubSub

__all__ = ["ClientFactory", "ClosablePubSub", "LocalClientSource", "local_clients", "network_clients"]


class ClientFactory(Protocol):
    """Opens a connected client; the component never knows which kind it got."""

    def __call__(
        self,
        *,
        client_id: str,
        will: Message | None = None,
        on_connect: OnConnect | None = None,
        clean_session: bool = True,
        keepalive_s: float = 30.0,
        manual_ack: bool = False,
    ) -> contextlib.AbstractAsyncContextManager[PubSub]:
        """An async context manager yielding a connected ``PubSub``."""
        ...


class ClosablePubSub(PubSub, Protocol):
    """An in-process client: a ``PubSub`` its owner closes when done."""

    async def close(self) -> None:
        """Unsubscribe and free the name."""
        ...


class LocalClientSource(Protocol):
    """What the embedded broker offers: in-process clients."""

    def local_client(self, name: str) -> ClosablePubSub:
        """A client living inside the broker's process."""
        ...


def network_clients(url: BrokerUrl) -> ClientFactory:
    """Clients that connect over TCP (or TLS) to the broker at ``url``."""

    @contextlib.asynccontextmanager
    async def open_client(
        *,
        client_id: str,
        will: Message | None = None,
        on_connect: OnConnect | None = None,
        clean_session: bool = True,
        keepalive_s: float = 30.0,
        manual_ack: bool = False,
    ) -> AsyncIterator[PubSub]:
        client = MqttClient(
            url=url,
            client_id=client_id,
            will=will,
            on_connect=on_connect,
            clean_session=clean_session,
            keepalive_s=keepalive_s,
            manual_ack=manual_ack,
        )
        async with client:
            yield client

    return open_client


def local_clients(broker: LocalClientSource) -> ClientFactory:
    """Clients inside the embedded broker: no socket, no will (they die with the broker)."""

    @contextlib.asynccontextmanager
    async def open_client(
        *,
        client_id: str,
        will: Message | None = None,
        on_connect: OnConnect | None = None,
        clean_session: bool = True,
        keepalive_s: float = 30.0,
        manual_ack: bool = False,
    ) -> AsyncIterator[PubSub]:
        del will, clean_session, keepalive_s, manual_ack  # in-process: cannot die alone, keeps no session
        client = broker.local_client(client_id)
        try:
            if on_connect is not None:
                await on_connect()
            yield client
        finally:
            await client.close()  # its name is free again: a part can be stopped and started again

    return open_client
