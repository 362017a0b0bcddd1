"""Open and close asyncua clients as the bridge config says: security, login, timeouts, subscription shape."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from pathlib import Path
from typing import Final

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import security_policies
from asyncua.ua.uaerrors import UaError, UaStatusCodeError
from cryptography import x509

from model.bridges import OpcUaBridgeConfig
from uns.errors import DeviceUnreachable

__all__ = ["CONNECTION_ERRORS", "close_client", "open_client", "subscription_parameters"]

log = logging.getLogger(__name__)

CONNECTION_ERRORS: Final = (OSError, TimeoutError, ConnectionError, UaError)
"""What asyncua raises when a server is away, slow, or refuses us."""

_NO_WATCHDOG_S: Final = 24 * 3600.0
"""asyncua's own watchdog probes ServerState with a short fixed timeout and drops a busy but healthy
connection (FreeOpcUa/opcua-asyncio #986 and follow-ups); we judge liveness from notifications and
keep-alives instead, so its probe is pushed out of the way."""

_MODES: Final = {"Sign": ua.MessageSecurityMode.Sign, "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt}


def _application_uri(certificate: Path) -> str | None:
    """The URI in the certificate's subjectAltName: the client must present the same one."""
    data = certificate.read_bytes()
    cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


async def _configure(client: Client, config: OpcUaBridgeConfig) -> None:
    if config.username is not None:
        client.set_user(config.username)
    if config.password is not None:
        client.set_password(config.password.get_secret_value())
    security = config.security
    if security.policy == "None" or security.certificate is None or security.private_key is None:
        return
    uri = _application_uri(security.certificate)
    if uri is not None:
        client.application_uri = uri
    await client.set_security(
        security_policies.SecurityPolicyBasic256Sha256,
        certificate=str(security.certificate),
        private_key=str(security.private_key),
        server_certificate=str(security.server_certificate) if security.server_certificate else None,
        mode=_MODES[security.mode],
    )


async def open_client(config: OpcUaBridgeConfig) -> Client:
    """A connected client with the configured security and login.

    Raises:
        DeviceUnreachable: the server did not answer within ``timeout_s`` or refused the session;
            the message names the endpoint and the reason.
    """
    client = Client(config.endpoint, timeout=config.timeout_s, watchdog_intervall=_NO_WATCHDOG_S)
    client.name = client.description = f"uns-hub bridge {config.name}"
    try:
        async with asyncio.timeout(config.timeout_s * 2):
            await _configure(client, config)
            await client.connect()
    except (*CONNECTION_ERRORS, ValueError) as exc:
        await close_client(client, timeout_s=config.timeout_s)
        raise DeviceUnreachable(config.name, config.endpoint, _describe(exc, config)) from exc
    return client


def _describe(exc: BaseException, config: OpcUaBridgeConfig) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {config.timeout_s * 2:g} s"
    if isinstance(exc, UaStatusCodeError):
        name = type(exc).__name__
        if config.username is not None and name in ("BadUserAccessDenied", "BadIdentityTokenInvalid",
                                                    "BadIdentityTokenRejected"):  # fmt: skip
            return f"login refused for user {config.username!r} ({name})"
        return f"server refused the connection ({name})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def close_client(client: Client, *, timeout_s: float) -> None:
    """Close the session (deleting its subscriptions) if the server is still there; never raises."""
    with contextlib.suppress(*CONNECTION_ERRORS, RuntimeError):
        async with asyncio.timeout(timeout_s):
            await client.disconnect()


def subscription_parameters(config: OpcUaBridgeConfig) -> ua.CreateSubscriptionParameters:
    """One subscription at the publishing interval, with a keep-alive every ``timeout_s / 2``.

    The keep-alive is what proves a quiet subscription alive: with it, a server that has nothing to
    report still answers twice per liveness window.
    """
    interval = config.publishing_interval_ms
    keepalive = max(1, math.ceil(config.timeout_s * 500 / interval))
    params = ua.CreateSubscriptionParameters()
    params.RequestedPublishingInterval = interval
    params.RequestedMaxKeepAliveCount = keepalive
    params.RequestedLifetimeCount = keepalive * 10  # the spec wants at least 3x the keep-alive count
    params.MaxNotificationsPerPublish = 0  # no limit: one publish carries a whole scan
    params.PublishingEnabled = True
    params.Priority = 0
    return params
