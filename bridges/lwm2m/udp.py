"""An aiocoap UDP context on a port of its own: aiocoap sets SO_REUSEPORT, which lets sockets share a port.

On Linux two sockets of one user that both set SO_REUSEPORT may bind the same UDP port, and the
kernel then deals the datagrams out between them; a bind to port 0 may even be handed a port such
a socket already holds. Any other aiocoap program on the machine could so receive half of our
server's (or client's) traffic. So the port is claimed first by a socket without the option (the
kernel then gives, or accepts, only a port nobody holds), released, bound by aiocoap, and the
option is cleared on aiocoap's socket so that nobody can join it afterwards.
"""

from __future__ import annotations

import socket
from typing import Any

import aiocoap  # type: ignore[import-untyped]  # no py.typed in aiocoap 0.4.17

__all__ = ["bound_port", "claim_port", "open_context"]


def _mapped(host: str) -> str:
    """The IPv6 address aiocoap's udp6 transport binds for ``host`` (IPv4 as v4-mapped)."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104  (the wildcard, as configured)
        return "::"
    return host if ":" in host else f"::ffff:{host}"


def claim_port(host: str, port: int) -> int:
    """A UDP port on ``host`` that no socket holds (``port``, or a free one for 0); OSError if it is taken."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        probe.bind((_mapped(host), port))
        return int(probe.getsockname()[1])


def _socket(ctx: aiocoap.Context) -> Any:
    for interface in ctx.request_interfaces:
        messages = getattr(getattr(interface, "token_interface", None), "message_interface", None)
        transport = getattr(messages, "transport", None)
        if transport is not None:
            return transport.get_extra_info("socket")
    raise RuntimeError("the CoAP context bound no UDP socket")


def bound_port(ctx: aiocoap.Context) -> int:
    """The UDP port a context bound (aiocoap does not expose it: its udp6 socket's name)."""
    return int(_socket(ctx).getsockname()[1])


async def open_context(site: object, host: str, port: int) -> tuple[aiocoap.Context, int]:
    """An aiocoap server context (UDP only) on ``host:port`` (0: a free port) held alone; and the port.

    Raises:
        OSError: the port is taken (the message names host and port).
    """
    try:
        port = claim_port(host, port)
    except OSError as exc:
        raise OSError(exc.errno, f"UDP {host}:{port}: {exc.strerror}") from None
    ctx = await aiocoap.Context.create_server_context(site, bind=(host, port), transports=["udp6"])
    _socket(ctx).setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 0)
    return ctx, port
