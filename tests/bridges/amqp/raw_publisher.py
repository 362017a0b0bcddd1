"""A publisher that is not aio-pika: AMQP 0-9-1 frames from pamqp's codec over a plain blocking socket.

The source consumes with aio-pika; publishing the test's messages with a client written apart from
it (the handshake, ``confirm.select``, ``basic.publish`` with a content header and body, waiting for
each ``basic.ack``) keeps a shared misreading of the protocol from passing unnoticed. Run it in a
thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import socket
import urllib.parse

from pamqp import commands, exceptions, frame, header
from pamqp.body import ContentBody

__all__ = ["raw_publish"]


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def send(self, value: frame.FrameTypes, channel: int = 0) -> None:
        self._sock.sendall(frame.marshal(value, channel))

    def expect(self, kind: type[object]) -> object:
        """The next frame of type ``kind`` (heartbeats skipped); anything else fails the test."""
        while True:
            try:
                used, _channel, value = frame.unmarshal(self._buffer)
            except exceptions.UnmarshalingException:  # not a whole frame yet: read more
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise ConnectionError("RabbitMQ closed the connection") from None
                self._buffer += chunk
                continue
            self._buffer = self._buffer[used:]
            if isinstance(value, kind):
                return value
            if not isinstance(value, header.ProtocolHeader) and value.name != "Heartbeat":
                raise AssertionError(f"expected {kind.__name__}, got {value!r}")


def raw_publish(url: str, exchange: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish persistent (routing key, body) pairs to an existing ``exchange``, each confirmed by RabbitMQ."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=10) as sock:
        amqp = _Connection(sock)
        sock.sendall(frame.marshal(header.ProtocolHeader(), 0))
        amqp.expect(commands.Connection.Start)
        response = f"\0{parts.username}\0{parts.password}"
        amqp.send(commands.Connection.StartOk(client_properties={"product": "uns-test-raw"}, response=response))
        tune = amqp.expect(commands.Connection.Tune)
        assert isinstance(tune, commands.Connection.Tune)
        amqp.send(commands.Connection.TuneOk(channel_max=1, frame_max=tune.frame_max, heartbeat=0))
        amqp.send(commands.Connection.Open(virtual_host=urllib.parse.unquote(parts.path[1:]) or "/"))
        amqp.expect(commands.Connection.OpenOk)
        amqp.send(commands.Channel.Open(), 1)
        amqp.expect(commands.Channel.OpenOk)
        amqp.send(commands.Confirm.Select(), 1)
        amqp.expect(commands.Confirm.SelectOk)
        for key, body in messages:
            amqp.send(commands.Basic.Publish(exchange=exchange, routing_key=key), 1)
            properties = commands.Basic.Properties(delivery_mode=2, content_type="application/json")
            amqp.send(header.ContentHeader(body_size=len(body), properties=properties), 1)
            amqp.send(ContentBody(body), 1)
            amqp.expect(commands.Basic.Ack)
        amqp.send(commands.Connection.Close(reply_code=200, reply_text="done", class_id=0, method_id=0))
        amqp.expect(commands.Connection.CloseOk)
