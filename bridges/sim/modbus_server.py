"""A simulated PLC's Modbus TCP server: MBAP framing and the bit and register function codes over plain tables.

The PLC answers unit id 1 (and 0 and 255, which the Messaging on TCP/IP guide, 4.4.1.2, has a client
use for a device it reaches directly) with function codes 1, 2, 3, 4 (read coils, discrete inputs, holding and input
registers), 5, 6 (write one coil or holding register), 15 and 16 (write several), as the Modbus
Application Protocol v1.1b3 orders its checks: an unknown function code gets exception 1 (illegal
function), a quantity out of range or a body that does not match it exception 3 (illegal data value),
an address range past the table exception 2 (illegal data address). Any other unit id gets exception
11 (gateway target device failed to respond): nothing answers behind this PLC. A header that is not
Modbus (protocol id not 0, length outside 2..254) closes the connection, as a PLC that lost the framing
does. Each request is answered inside ``data_received``, with no task and no timer of its own.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Mapping
from typing import Self, cast

from model.bridges.modbus import Table

__all__ = ["UNIT_ID", "ModbusServer", "answer"]

log = logging.getLogger(__name__)

UNIT_ID = 1
"""The unit id the simulated PLC answers as."""
# 0xFF and 0 address a device on TCP itself, not one behind it (Messaging on TCP/IP guide 4.4.1.2)
_DIRECT_UNITS = frozenset((0x00, UNIT_ID, 0xFF))

_HEADER = struct.Struct(">HHHB")  # transaction id, protocol id, length (unit id + PDU), unit id
_ADDRESS_QUANTITY = struct.Struct(">HH")
_MAX_LENGTH = 254  # unit id + the largest PDU (253 bytes)
_READ_BITS, _READ_REGISTERS = 2000, 125  # the largest quantities a read may ask for
_WRITE_BITS, _WRITE_REGISTERS = 1968, 123
_ILLEGAL_FUNCTION, _ILLEGAL_ADDRESS, _ILLEGAL_VALUE, _NO_TARGET = 1, 2, 3, 11
_READS: Mapping[int, Table] = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
_COIL_ON, _COIL_OFF = 0xFF00, 0x0000


def _exception(function: int, code: int) -> bytes:
    return bytes((function | 0x80, code))


def _read(tables: Mapping[Table, list[int]], function: int, body: bytes) -> bytes:
    table = _READS[function]
    bits = table in ("coil", "discrete")
    if len(body) != 4:
        return _exception(function, _ILLEGAL_VALUE)
    address, count = _ADDRESS_QUANTITY.unpack(body)
    if not 1 <= count <= (_READ_BITS if bits else _READ_REGISTERS):
        return _exception(function, _ILLEGAL_VALUE)
    values = tables[table]
    if address + count > len(values):
        return _exception(function, _ILLEGAL_ADDRESS)
    if bits:
        packed = bytearray((count + 7) // 8)
        for index in range(count):
            if values[address + index]:
                packed[index >> 3] |= 1 << (index & 7)
        return bytes((function, len(packed))) + packed
    return struct.pack(f">BB{count}H", function, 2 * count, *values[address : address + count])


def _write_single(tables: Mapping[Table, list[int]], function: int, body: bytes) -> bytes:
    if len(body) != 4:
        return _exception(function, _ILLEGAL_VALUE)
    address, value = _ADDRESS_QUANTITY.unpack(body)
    if function == 5 and value not in (_COIL_ON, _COIL_OFF):
        return _exception(function, _ILLEGAL_VALUE)
    values = tables["coil" if function == 5 else "holding"]
    if address >= len(values):
        return _exception(function, _ILLEGAL_ADDRESS)
    values[address] = int(value == _COIL_ON) if function == 5 else value
    return bytes((function,)) + body  # the answer echoes the request


def _write_multiple(tables: Mapping[Table, list[int]], function: int, body: bytes) -> bytes:
    bits = function == 15
    if len(body) < 5:
        return _exception(function, _ILLEGAL_VALUE)
    address, count = _ADDRESS_QUANTITY.unpack_from(body)
    size = (count + 7) // 8 if bits else 2 * count
    if not 1 <= count <= (_WRITE_BITS if bits else _WRITE_REGISTERS) or body[4] != size or len(body) != 5 + size:
        return _exception(function, _ILLEGAL_VALUE)
    values = tables["coil" if bits else "holding"]
    if address + count > len(values):
        return _exception(function, _ILLEGAL_ADDRESS)
    if bits:
        values[address : address + count] = [(body[5 + (i >> 3)] >> (i & 7)) & 1 for i in range(count)]
    else:
        values[address : address + count] = struct.unpack_from(f">{count}H", body, 5)
    return bytes((function,)) + body[:4]


def answer(tables: Mapping[Table, list[int]], pdu: bytes) -> bytes:
    """The response PDU to a request PDU, reading or writing ``tables`` (bits as 0/1, registers as 0..65535)."""
    function = pdu[0]
    body = pdu[1:]
    if function in _READS:
        return _read(tables, function, body)
    if function in (5, 6):
        return _write_single(tables, function, body)
    if function in (15, 16):
        return _write_multiple(tables, function, body)
    return _exception(function & 0x7F, _ILLEGAL_FUNCTION)


class _Connection(asyncio.Protocol):
    """One client: frames cut from the byte stream, each answered at once."""

    def __init__(self, server: ModbusServer) -> None:
        self._server = server
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if self._server._listener is None:
            # accepted just before stop() and made just after it: a stopped PLC answers no one
            self._transport.abort()
            return
        self._server.connections.add(self._transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._server.connections.discard(self._transport)

    def pause_writing(self) -> None:
        # a client that sends without reading its answers: stop reading it rather than buffer answers without end
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= _HEADER.size:
            transaction, protocol, length, unit = _HEADER.unpack_from(buffer)
            if protocol != 0 or not 2 <= length <= _MAX_LENGTH:
                log.debug("simulated PLC on port %d: not a Modbus header %s, closing", self._server.port, buffer[:7])
                buffer.clear()
                if self._transport is not None:
                    self._transport.close()
                return
            end = 6 + length
            if len(buffer) < end:
                return
            pdu = bytes(buffer[_HEADER.size : end])
            del buffer[:end]
            reply = answer(self._server.tables, pdu) if unit in _DIRECT_UNITS else _exception(pdu[0] & 0x7F, _NO_TARGET)
            if self._transport is not None:
                self._transport.write(_HEADER.pack(transaction, 0, len(reply) + 1, unit) + reply)


class ModbusServer:
    """One simulated PLC on Modbus TCP: ``async with ModbusServer(tables=..., port=0) as plc:``, then ``plc.port``.

    Args:
        tables: The PLC's four tables, read and written in place (bits as 0/1); a table's length is its size.
        bind: Address to listen on.
        port: TCP port; 0 = a free one (``port`` holds the real one once entered).
    """

    def __init__(self, *, tables: Mapping[Table, list[int]], bind: str = "127.0.0.1", port: int = 0) -> None:
        self.tables = tables
        self.bind = bind
        self.port = port
        self.connections: set[asyncio.Transport] = set()
        self._listener: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen (idempotent).

        Raises:
            OSError: the address cannot be bound (a port in use, ...).
        """
        if self._listener is None:
            loop = asyncio.get_running_loop()
            self._listener = await loop.create_server(lambda: _Connection(self), self.bind, self.port)
            self.port = int(self._listener.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop every connection, as a PLC taken off the network (idempotent)."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        listener.close()
        for transport in list(self.connections):
            transport.abort()
        self.connections.clear()
        await listener.wait_closed()
