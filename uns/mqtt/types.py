"""Value types and the one publish/subscribe seam every component talks through."""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol, Self

if TYPE_CHECKING:
    from model.envelope import ReadingFields

__all__ = ["BrokerUrl", "Message", "OnConnect", "PubSub", "Will"]


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class Message:
    """One MQTT application message."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    packet_id: int = dataclasses.field(default=0, compare=False)
    """Set on QoS 1/2 messages received from a broker; what ``MqttClient.ack`` acknowledges."""
    decoded: ReadingFields | None = dataclasses.field(default=None, compare=False, repr=False)
    """The value envelope in ``payload`` as its in-process publisher read it (``model.envelope.read_fields``),
    handed to in-process subscribers so they do not parse the JSON again; never sent over MQTT."""

    def __init__(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        packet_id: int = 0,
        decoded: ReadingFields | None = None,
    ) -> None:
        # the dataclass's own frozen __init__ goes through object.__setattr__ per field (~1.1 us a
        # message, two per republished metric under uns up); the slots' own setters take ~0.4 us
        _set_topic(self, topic)
        _set_payload(self, payload)
        _set_qos(self, qos)
        _set_retain(self, retain)
        _set_packet_id(self, packet_id)
        _set_decoded(self, decoded)


_set_topic, _set_payload, _set_qos, _set_retain, _set_packet_id, _set_decoded = (
    Message.__dict__[field.name].__set__ for field in dataclasses.fields(Message)
)


OnConnect = Callable[[], Awaitable[None]]
"""Called after every (re)connect, once subscriptions are restored: republish state here."""

Will = Message | Callable[[], Message]
"""A client's will: fixed, or made afresh for every CONNECT (a Sparkplug host's STATE will carries the
time of the CONNECT that registers it, tck-id-host-topic-phid-death-payload-connect)."""


@dataclasses.dataclass(frozen=True, slots=True)
class BrokerUrl:
    """Where a broker listens: ``mqtt://user:pass@host:port``, ``mqtts://`` for TLS, ``ws://`` for WebSocket."""

    scheme: str = "mqtt"
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None

    _DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}  # noqa: RUF012  (class constant)

    @classmethod
    def from_str(cls, url: str) -> Self:
        """Parse ``mqtt://user:pass@host:port``; raises ``ValueError`` naming the part that is wrong."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in cls._DEFAULT_PORTS:
            raise ValueError(f"broker url {url!r}: scheme must be one of mqtt, mqtts, ws, wss")
        if not parts.hostname:
            raise ValueError(f"broker url {url!r}: no host")
        try:
            port = parts.port or cls._DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise ValueError(f"broker url {url!r}: {exc}") from exc
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=port,
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        auth = ""
        if self.username is not None:
            auth = urllib.parse.quote(self.username, safe="")
            if self.password is not None:
                auth += ":" + urllib.parse.quote(self.password, safe="")
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{auth}{host}:{self.port}"

    def redacted(self) -> str:
        """The url without its password, for logs and the ready line."""
        return str(dataclasses.replace(self, password="***" if self.password is not None else None))

    def with_credentials(self, username: str | None, password: str | None) -> BrokerUrl:
        """A copy that logs in as someone else."""
        return dataclasses.replace(self, username=username, password=password)


class PubSub(Protocol):
    """What a component needs from MQTT, whether over a socket or inside the embedded broker."""

    @property
    def client_id(self) -> str:
        """The MQTT client id (or in-process name)."""
        ...

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Publish one message.

        QoS 0 returns once the message is handed to the transport (awaiting only back-pressure);
        QoS 1 returns once the broker acknowledged it.
        """
        ...

    async def publish_many(self, messages: Sequence[Message]) -> None:
        """Publish many messages with one await: the fast path for republishing whole payloads."""
        ...

    async def subscribe(self, filters: Sequence[str], *, qos: int = 1) -> None:
        """Subscribe and wait for the grant; raises ``BrokerError`` naming any refused filter."""
        ...

    async def unsubscribe(self, filters: Sequence[str]) -> None:
        """Stop receiving messages for these filters (over a socket: once the broker acknowledged it)."""
        ...

    def messages(self) -> AsyncIterator[Message]:
        """Every message delivered to this client's subscriptions, in arrival order."""
        ...

    def ack(self, message: Message) -> None:
        """Acknowledge a received QoS 1/2 message once it is safely processed.

        Only clients opened with ``manual_ack=True`` hold acknowledgements back; for others, and for
        in-process clients (which cannot lose a message without their broker), it does nothing.
        """
        ...

    async def disconnected(self) -> str:
        """Wait until the connection in use now is lost or the client is closed; returns why.

        Returns at once when not connected. A client that reconnects by itself goes on after this
        returns; one opened with ``reconnect=False`` is then finished (the owner opens a new one).
        """
        ...
