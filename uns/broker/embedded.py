"""EmbeddedBroker: amqtt started from broker.yaml as an async context manager, with its URLs and stats."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from pathlib import Path
from types import TracebackType
from typing import Self

from amqtt.errors import BrokerError as AmqttBrokerError

from model.broker_config import BrokerFileConfig, Listener, is_loopback
from uns.broker.core import UnsBroker
from uns.broker.local import LocalClient
from uns.broker.stats import BrokerStats
from uns.errors import BrokerError, ConfigError
from uns.mqtt.types import BrokerUrl

__all__ = ["EmbeddedBroker"]

log = logging.getLogger(__name__)

_SHUTDOWN_S = 2.0
_FLAGS = {
    "default": "--mqtt-port / UNS_MQTT_PORT",
    "ws": "--ws-port / UNS_WS_PORT",
    "tls": "--tls-port / UNS_BROKER__TLS_PORT",
}
_SETTINGS = {"default": "broker.mqtt_port", "ws": "broker.ws_port", "tls": "broker.tls_port"}


def _endpoint(listener: Listener) -> str:
    host = f"[{listener.bind}]" if ":" in listener.bind else listener.bind
    return f"{host}:{listener.port}"


def _connect_host(bind: str) -> str:
    """Where a client on this machine reaches a listener bound to ``bind``."""
    if bind in ("0.0.0.0", ""):  # noqa: S104  (we only name it, we do not bind it)
        return "127.0.0.1"
    if bind == "::":
        return "::1"
    return bind


class EmbeddedBroker:
    """The hub's own MQTT broker (amqtt, MQTT 3.1.1).

    ``async with EmbeddedBroker(config=..., data_dir=...) as broker:`` starts every listener or none,
    then ``broker.url`` holds the real TCP endpoint (even when port 0 was asked). Exit stops amqtt
    within about two seconds. With ``gated=True`` network connections wait (unread) until
    ``open_gate()``; in-process clients work at once.
    """

    name = "broker"

    def __init__(self, *, config: BrokerFileConfig, data_dir: Path, gated: bool = False) -> None:
        self.config = config
        self.data_dir = data_dir
        self._gated = gated
        self._broker: UnsBroker | None = None
        self._url: BrokerUrl | None = None
        self._ws_url: str | None = None
        self._tls_url: BrokerUrl | None = None
        self._locals: dict[str, LocalClient] = {}

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        broker = UnsBroker(settings=self.config, data_dir=self.data_dir)
        if self._gated:
            broker.gate.clear()
        try:
            await broker.start()
        except AmqttBrokerError as exc:
            started = broker.started_listeners()
            with contextlib.suppress(Exception):
                await broker.close_listeners()
            raise self._start_error(exc, started) from exc
        self._broker = broker
        listeners = self.config.listeners
        self._url = BrokerUrl(scheme="mqtt", host=_connect_host(listeners.tcp.bind), port=broker.bound_port("default"))
        log.info("broker listening: mqtt on %s:%d", listeners.tcp.bind, self._url.port)
        if listeners.ws is not None:
            port = broker.bound_port("ws")
            host = _connect_host(listeners.ws.bind)
            self._ws_url = f"ws://{f'[{host}]' if ':' in host else host}:{port}"
            log.info("broker listening: websocket on %s:%d", listeners.ws.bind, port)
        if listeners.tls is not None:
            port = broker.bound_port("tls")
            self._tls_url = BrokerUrl(scheme="mqtts", host=_connect_host(listeners.tls.bind), port=port)
            log.info("broker listening: mqtts on %s:%d", listeners.tls.bind, port)
        plain = {"mqtt": listeners.tcp, "websocket": listeners.ws}
        for kind, listener in plain.items():
            if listener is not None and not is_loopback(listener.bind):
                log.warning(
                    "PLAIN %s ON THE NETWORK (%s): user names and passwords cross it in clear text; "
                    "add a tls listener to broker.yaml and bind this one to 127.0.0.1",
                    kind.upper(),
                    listener.bind,
                )
        if self.config.allow_anonymous:
            exposed = [bind for bind in self.config.binds if not is_loopback(bind)]
            log.warning(
                "ANONYMOUS ACCESS IS ON: clients without a password get role %s%s",
                self.config.anonymous_role,
                f" -- from the network ({', '.join(exposed)})" if exposed else " (loopback only)",
            )
        return self

    def open_gate(self) -> None:
        """Let network clients in (a ``gated`` broker holds their connections until now).

        ``uns up`` opens it once the host and the historian are subscribed: after a crash, edge nodes
        reconnect at once and replay; nothing they send may arrive before someone listens.
        """
        if self._broker is not None:
            self._broker.gate.set()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        broker, self._broker = self._broker, None
        for client in list(self._locals.values()):
            await client.close()
        self._locals.clear()
        if broker is None:
            return
        try:
            async with asyncio.timeout(_SHUTDOWN_S):
                await broker.shutdown()
        except TimeoutError:
            log.warning("broker did not stop within %.0f s; closing its listeners", _SHUTDOWN_S)
            with contextlib.suppress(Exception):
                await broker.close_listeners()
        log.info("broker stopped")

    async def run(self) -> None:
        """Serve until cancelled (amqtt works in its own tasks; this only keeps the part alive)."""
        self._require()
        await asyncio.Event().wait()

    def _start_error(self, exc: AmqttBrokerError, started: tuple[str, ...]) -> BrokerError | ConfigError:
        """Why the broker did not start; a port in use is the setting's to change (exit 2, as the web's port)."""
        cause = exc.__cause__
        listeners = self.config.listeners
        by_name = {"default": listeners.tcp, "ws": listeners.ws, "tls": listeners.tls}
        if isinstance(cause, OSError):
            # amqtt starts listeners in order; the failing one is the first that did not bind
            for name, listener in by_name.items():
                if listener is None or name in started:
                    continue
                endpoint = _endpoint(listener)
                if cause.errno == errno.EADDRINUSE:
                    reason = f"{endpoint} is in use: choose another port with {_FLAGS[name]}, or 0 for any free port"
                    return ConfigError(source="broker", path=_SETTINGS[name], value=listener.port, reason=reason)
                return BrokerError(endpoint, f"cannot listen: {cause.strerror or cause}")
        return BrokerError(_endpoint(listeners.tcp), f"broker failed to start: {cause or exc}")

    # --- what callers use after enter -------------------------------------------------------------

    def _require(self) -> UnsBroker:
        if self._broker is None:
            raise BrokerError("embedded", "the broker is not running: use `async with EmbeddedBroker(...)`")
        return self._broker

    @property
    def url(self) -> BrokerUrl:
        """The TCP listener (``mqtt://host:port``, real port)."""
        self._require()
        assert self._url is not None  # noqa: S101  (set together with _broker)
        return self._url

    @property
    def ws_url(self) -> str | None:
        """``ws://host:port`` of the WebSocket listener, or None when it is off."""
        self._require()
        return self._ws_url

    @property
    def tls_url(self) -> BrokerUrl | None:
        """``mqtts://host:port`` of the TLS listener, or None when it is off."""
        self._require()
        return self._tls_url

    @property
    def anonymous(self) -> bool:
        """Whether clients may connect without a user name."""
        return self.config.allow_anonymous

    @property
    def stats(self) -> BrokerStats:
        """The counters now."""
        broker = self._require()
        broker.counters.connections = broker.connected_count()
        broker.counters.pending = broker.pending_count()
        broker.counters.queued_dropped = broker.session_manager.dropped_total
        return broker.counters.snapshot()

    def local_client(self, name: str, *, queue_size: int = 100_000) -> LocalClient:
        """A new in-process client (role admin) called ``name``; close it, or it closes with the broker."""
        broker = self._require()
        if name in self._locals and not self._locals[name].closed:
            raise BrokerError("embedded", f"a local client named {name!r} exists already: pick another name")
        client = LocalClient(name=name, backend=broker, index=broker.local_index, queue_size=queue_size)
        self._locals[name] = client
        return client
