"""How a component gets its MQTT client: over a socket to any broker, or in-process in the embedded one."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

from uns.errors import ConfigError
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message, OnConnect, PubSub, Will

__all__ = [
    "ClientFactory",
    "ClosablePubSub",
    "LocalClientSource",
    "broker_ssl_context",
    "local_clients",
    "network_clients",
]


class ClientFactory(Protocol):
    """Opens a connected client; the component never knows which kind it got."""

    def __call__(
        self,
        *,
        client_id: str,
        will: Will | None = None,
        on_connect: OnConnect | None = None,
        clean_session: bool = True,
        keepalive_s: float = 30.0,
        manual_ack: bool = False,
        max_inflight: int = 1000,
        reconnect: bool = True,
        birth: Callable[[], Message] | None = None,
    ) -> contextlib.AbstractAsyncContextManager[PubSub]:
        """An async context manager yielding a connected ``PubSub``.

        ``max_inflight`` bounds QoS 1/2 publishes awaiting acknowledgement over a socket. ``reconnect=False``
        ends the client with its connection (``PubSub.disconnected`` returns; publishes then fail), for an
        owner whose session is the connection, as a Sparkplug edge node's is. A callable ``will`` is
        called for every CONNECT over a socket (in-process clients have no will). ``birth`` is made on every
        reconnect and published first on it (``MqttClient``); in-process clients never reconnect.
        """
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


def broker_ssl_context(url: BrokerUrl, ca_file: Path | None) -> ssl.SSLContext | None:
    """The TLS settings of the hub's clients of ``url``: None unless ``mqtts://``; ``ca_file`` replaces the system CAs.

    Raises:
        ConfigError: ``ca_file`` cannot be read or holds no certificate (named as ``broker.ca_file``).
    """
    if url.scheme != "mqtts":
        return None
    if ca_file is None:
        return ssl.create_default_context()  # the system trust store (or SSL_CERT_FILE)
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        reason = f"cannot load the broker's CA certificates: {exc}"
        raise ConfigError(source="settings", path="broker.ca_file", value=str(ca_file), reason=reason) from exc


def network_clients(url: BrokerUrl, *, ca_file: Path | None = None) -> ClientFactory:
    """Clients that connect over TCP (or TLS) to the broker at ``url``, trusting ``ca_file`` for ``mqtts://``.

    Every component's network client is made here, so the CA setting (``broker.ca_file``,
    ``--broker-ca``) applies to all of them; the file is read once, now, and a bad one fails the start.
    """
    context = broker_ssl_context(url, ca_file)

    @contextlib.asynccontextmanager
    async def open_client(
        *,
        client_id: str,
        will: Will | None = None,
        on_connect: OnConnect | None = None,
        clean_session: bool = True,
        keepalive_s: float = 30.0,
        manual_ack: bool = False,
        max_inflight: int = 1000,
        reconnect: bool = True,
        birth: Callable[[], Message] | None = None,
    ) -> AsyncIterator[PubSub]:
        client = MqttClient(
            url=url,
            client_id=client_id,
            will=will,
            on_connect=on_connect,
            clean_session=clean_session,
            keepalive_s=keepalive_s,
            manual_ack=manual_ack,
            max_inflight=max_inflight,
            ssl_context=context,
            reconnect=reconnect,
            birth=birth,
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
        will: Will | None = None,
        on_connect: OnConnect | None = None,
        clean_session: bool = True,
        keepalive_s: float = 30.0,
        manual_ack: bool = False,
        max_inflight: int = 1000,
        reconnect: bool = True,
        birth: Callable[[], Message] | None = None,
    ) -> AsyncIterator[PubSub]:
        # in-process: no session, nothing in flight, no connection to lose
        del will, clean_session, keepalive_s, manual_ack, max_inflight, reconnect, birth
        client = broker.local_client(client_id)
        try:
            if on_connect is not None:
                await on_connect()
            yield client
        finally:
            await client.close()  # its name is free again: a part can be stopped and started again

    return open_client
