"""Client address and scheme from ``X-Forwarded-For``/``-Proto``, believed only from configured reverse proxies.

Anyone can send these headers; trusting them from any peer (even loopback, where a local page or
script can reach the hub) lets a caller pick the address that login throttling counts. So a
request's client and scheme are its socket's, unless the socket's peer is one of
``web.trusted_proxies``: then the client is the rightmost ``X-Forwarded-For`` address that is not
itself a trusted proxy, and the scheme is the proxy's ``X-Forwarded-Proto``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ProxyHeadersMiddleware", "TrustedProxies"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """A set of proxy addresses and networks (``10.0.0.5``, ``10.1.0.0/16``, ``::1``); empty trusts none."""

    def __init__(self, entries: Sequence[str] = ()) -> None:
        networks: list[_Network] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"trusted proxy {entry!r} is not an IP address or network: {exc}") from None
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str) or not self._networks:
            return False
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address.version == network.version and address in network for network in self._networks)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        """The client address of a request from ``peer`` that carried ``forwarded_for`` (None: no header)."""
        if peer not in self or not forwarded_for:
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):  # the rightmost hops were added by our proxies; the first other one is the client
            if hop not in self:
                return hop
        return hops[0] if hops else peer


def _header(scope: Scope, name: bytes) -> str | None:
    values = [value.decode("latin-1") for key, value in scope.get("headers", []) if key == name]
    return ",".join(values) if values else None


class ProxyHeadersMiddleware:
    """Pure ASGI middleware: rewrites ``scope["client"]`` and ``scope["scheme"]`` for trusted proxies only."""

    def __init__(self, app: ASGIApp, *, trusted: TrustedProxies) -> None:
        self._app = app
        self._trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with the client and scheme its trusted proxy reports."""
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and client[0] in self._trusted:
            scope = dict(scope)
            forwarded = self._trusted.client(client[0], _header(scope, b"x-forwarded-for"))
            if forwarded != client[0]:
                scope["client"] = (forwarded, 0)
            proto = (_header(scope, b"x-forwarded-proto") or "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                secure = proto == "https"
                if scope["type"] == "websocket":
                    scope["scheme"] = "wss" if secure else "ws"
                else:
                    scope["scheme"] = proto
        await self._app(scope, receive, send)
