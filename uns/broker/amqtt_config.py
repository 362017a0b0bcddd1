"""broker.yaml's listeners and our two plugins (auth, topic ACL) as amqtt's explicit ``BrokerConfig``."""

from __future__ import annotations

from amqtt.contexts import BrokerConfig, ListenerConfig, ListenerType

from model.broker_config import BrokerFileConfig, Listener
from uns.broker.acl import AclGuard, AclTopicPlugin
from uns.broker.auth import Authenticator, UnsAuthPlugin

__all__ = ["amqtt_config"]


def _listener_config(kind: str, listener: Listener, max_connections: int) -> ListenerConfig:
    host = f"[{listener.bind}]" if ":" in listener.bind else listener.bind
    bind = f"{host}:{listener.port}"
    if kind == "ws":
        return ListenerConfig(type=ListenerType.WS, bind=bind, max_connections=max_connections)
    if kind == "tls":
        tls = listener
        return ListenerConfig(
            type=ListenerType.TCP,
            bind=bind,
            max_connections=max_connections,
            ssl=True,
            certfile=getattr(tls, "certfile", None),
            keyfile=getattr(tls, "keyfile", None),
            cafile=getattr(tls, "cafile", None),
        )
    return ListenerConfig(type=ListenerType.TCP, bind=bind, max_connections=max_connections)


def amqtt_config(settings: BrokerFileConfig, authenticator: Authenticator, guard: AclGuard) -> BrokerConfig:
    """An explicit amqtt config: our listeners and our two plugins only (no $SYS, no packet logging)."""
    limit = 0  # no amqtt semaphore (extra clients would wait unanswered): uns.broker.admission counts slots
    # amqtt requires a listener named "default": broker.yaml's tcp one; ws and tls keep their names
    listeners = {"default": _listener_config("tcp", settings.listeners.tcp, limit)}
    if settings.listeners.ws is not None:
        listeners["ws"] = _listener_config("ws", settings.listeners.ws, limit)
    if settings.listeners.tls is not None:
        listeners["tls"] = _listener_config("tls", settings.listeners.tls, limit)
    plugins = {
        f"{UnsAuthPlugin.__module__}.{UnsAuthPlugin.__qualname__}": {"authenticator": authenticator},
        f"{AclTopicPlugin.__module__}.{AclTopicPlugin.__qualname__}": {"guard": guard},
    }
    return BrokerConfig(
        listeners=listeners,
        plugins=plugins,
        timeout_disconnect_delay=0,
        session_expiry_interval=settings.limits.session_expiry_s,  # amqtt's monitor expires them
    )
