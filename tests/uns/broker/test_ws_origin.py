"""The WebSocket listener of an anonymous (loopback demo) broker refuses browser pages of other sites.

A page on any web site can open ``ws://127.0.0.1:9001`` from a browser on this machine; with anonymous
admin access on loopback it would then publish anything (commands to PLCs included). Browsers send the page's
``Origin``: a handshake naming a host other than this machine is closed before its CONNECT is read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.fixtures.broker import broker_test_config, start_broker
from uns.broker import hash_password

CONNECT_ANONYMOUS = bytes.fromhex("101000044d5154540402003c00046576696c")  # MQTT 3.1.1, client id "evil"
CONNACK_OK = bytes.fromhex("20020000")


async def _first_answer(ws_url: str, origin: str | None, connect: bytes = CONNECT_ANONYMOUS) -> bytes | str:
    """The broker's first answer to ``connect`` over a WebSocket from a page of ``origin``, or how it closed."""
    headers = {"Origin": origin} if origin is not None else {}
    try:
        async with websockets.connect(
            ws_url, subprotocols=[Subprotocol("mqtt")], additional_headers=headers, open_timeout=5
        ) as ws:
            await ws.send(connect)
            answer = await ws.recv()
    except ConnectionClosed as exc:
        return f"closed {exc.rcvd.code if exc.rcvd else None}"
    assert isinstance(answer, bytes)
    return answer


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        (None, CONNACK_OK),  # not a browser: a local MQTT client
        ("http://127.0.0.1:8080", CONNACK_OK),  # a page served on this machine (the hub's own web UI)
        ("http://localhost:3000", CONNACK_OK),
        ("http://[::1]:3000", CONNACK_OK),
        ("https://evil.example", "closed 1008"),  # any web site the user visits
        ("http://evil.example:9001", "closed 1008"),  # DNS rebinding names the page's own host
        ("null", "closed 1008"),  # a sandboxed iframe or a file: page
    ],
)
async def test_anonymous_ws_listener_refuses_other_sites(tmp_path: Path, origin: str | None, expected: object) -> None:
    config = broker_test_config(listeners={"tcp": {"port": 0}, "ws": {"port": 0}})
    async with start_broker(tmp_path, config) as broker:
        assert broker.ws_url is not None
        assert await _first_answer(broker.ws_url, origin) == expected
        refused = 0 if expected == CONNACK_OK else 1
        assert broker.stats.handshake_failed.get("cross-site websocket", 0) == refused


async def test_with_passwords_required_any_page_may_log_in(tmp_path: Path) -> None:
    config = broker_test_config(
        listeners={"tcp": {"port": 0}, "ws": {"port": 0}},
        allow_anonymous=False,
        users={"ada": {"password_hash": hash_password("pw"), "role": "viewer"}},
    )
    # CONNECT with user "ada", password "pw": flags 0xC2
    connect = bytes.fromhex("101900044d51545404c2003c00046576696c000361646100027077")
    async with start_broker(tmp_path, config) as broker:
        assert broker.ws_url is not None
        assert await _first_answer(broker.ws_url, "https://dashboard.example", connect) == CONNACK_OK
        anonymous = await _first_answer(broker.ws_url, "https://dashboard.example")
        assert anonymous == bytes.fromhex("20020005")  # refused as any anonymous client is
