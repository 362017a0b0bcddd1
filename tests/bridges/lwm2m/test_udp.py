"""The CoAP server's UDP port is its own: aiocoap's SO_REUSEPORT would let another socket share it."""

from __future__ import annotations

import socket

import pytest

from bridges.lwm2m.coap import CoapServer, RdHandler


def _reuseport_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    return sock


async def test_no_socket_can_join_the_server_port() -> None:
    async with CoapServer(host="127.0.0.1", port=0, handler=RdHandler()) as server:
        with _reuseport_socket() as intruder, pytest.raises(OSError, match="Address already in use"):
            intruder.bind(("::ffff:127.0.0.1", server.port))


async def test_a_taken_port_is_refused_naming_it() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        with pytest.raises(OSError, match=f"UDP 127.0.0.1:{port}: Address already in use"):
            async with CoapServer(host="127.0.0.1", port=port, handler=RdHandler()):
                pass
