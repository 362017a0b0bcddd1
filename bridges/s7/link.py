"""One S7 connection: ISO-on-TCP (RFC 1006: TPKT + COTP class 0), setup communication, read and write jobs.

Our own transport rather than snap7's ``AsyncClient``: that client's multi-variable read sends one
request per item (no packing), and its connect raises one exception class both for a refused TCP
connection and for a PLC that refuses the ISO connection, which we must tell apart (retry with
backoff, or fail fast naming rack/slot).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable, Sequence
from typing import TypeVar

from bridges.s7.pdu import (
    ItemResult,
    S7HeaderError,
    build_read,
    build_setup,
    build_szl,
    build_write,
    parse_read,
    parse_setup,
    parse_szl,
    parse_write,
)
from bridges.s7.plan import Chunk
from model.bridges.s7_address import S7Area

__all__ = ["LinkDown", "LinkRefused", "S7Link", "remote_tsap"]

_T = TypeVar("_T")

_COTP_CR, _COTP_CC, _COTP_DR, _COTP_DT = 0xE0, 0xD0, 0x80, 0xF0
_TPDU_1024 = 0x0A
_STALE_REPLIES = 3
_REFUSED_AT_ISO = (
    "the PLC accepted TCP but dropped the ISO connection request: check rack/slot (S7-300: 0/2, S7-400: see "
    "HW config, S7-1200/1500: 0/1 or 0/0) or the remote TSAP (LOGO!: 0x0200), and whether all of the CPU's "
    "connection resources are in use (close other HMI/PG connections or raise the CPU's limit)"
)


class LinkDown(Exception):
    """The connection is gone or never came up at TCP level (retry with backoff)."""


class LinkRefused(Exception):
    """The PLC answered and refused (fail fast: the message says what to check)."""


def remote_tsap(rack: int, slot: int, connection_type: int = 1) -> int:
    """The remote TSAP for a rack and slot: connection type (1 PG, 2 OP, 3 S7 basic) << 8 | rack << 5 | slot."""
    return connection_type << 8 | rack << 5 | slot


class S7Link:
    """A connected S7 session; not safe for concurrent jobs (PlcSource serialises calls per device)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        local_tsap: int,
        remote_tsap: int,
        pdu_size: int,
        timeout_s: float,
        connect_timeout_s: float,
    ) -> None:
        self._host, self._port = host, port
        self._local, self._remote = local_tsap, remote_tsap
        self._requested_pdu = pdu_size
        self._timeout_s, self._connect_timeout_s = timeout_s, connect_timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._sequence = 0
        self.pdu_size = pdu_size
        """Negotiated PDU size (after ``open``)."""

    async def open(self) -> None:
        """TCP connect, COTP connection request, setup communication."""
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        except TimeoutError:
            raise LinkDown(f"no TCP connection within {self._connect_timeout_s} s") from None
        except OSError as exc:
            raise LinkDown(f"TCP connect failed: {exc.strerror or exc}") from None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                await self._iso_connect()
                sequence = self._next()
                await self._send(build_setup(sequence, self._requested_pdu))
                try:
                    _, self.pdu_size = parse_setup(await self._receive())
                except S7HeaderError as exc:
                    raise LinkRefused(f"setup communication refused: {exc}") from None
        except TimeoutError:
            await self.close()
            raise LinkDown(f"no answer to the ISO/S7 connection setup within {self._connect_timeout_s} s") from None
        except LinkDown as exc:
            await self.close()
            raise LinkRefused(f"{exc}: {_REFUSED_AT_ISO}") from None
        except BaseException:
            await self.close()
            raise

    async def read(self, chunks: Sequence[Chunk]) -> list[ItemResult]:
        """One multi-variable read; header errors raise ``S7HeaderError``."""
        sequence = self._next()
        return await self._job(build_read(sequence, chunks), sequence, lambda pdu: parse_read(pdu, len(chunks)))

    async def write(self, area: S7Area, db: int, start: int, data: bytes, bit: int | None = None) -> int:
        """One write item; its return code (0xFF success)."""
        sequence = self._next()
        return await self._job(build_write(sequence, area, db, start, data, bit), sequence, parse_write)

    async def read_szl(self, szl_id: int, index: int = 0) -> bytes | None:
        """A system status list's records, or None if the PLC does not serve it."""
        sequence = self._next()
        return await self._job(build_szl(sequence, szl_id, index), sequence, parse_szl)

    async def close(self) -> None:
        """Close the socket; idempotent."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    def _next(self) -> int:
        self._sequence = self._sequence % 0xFFFF + 1
        return self._sequence

    async def _job(self, request: bytes, sequence: int, parse: Callable[[bytes], tuple[int, _T]]) -> _T:
        if self._writer is None:
            raise LinkDown("not connected")
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._send(request)
                for _ in range(_STALE_REPLIES + 1):
                    got, result = parse(await self._receive())
                    if got == sequence:
                        return result
        except TimeoutError:
            await self.close()
            raise LinkDown(f"no answer within {self._timeout_s} s (half-open connection?)") from None
        await self.close()
        raise LinkDown(f"replies to other jobs instead of job {sequence}")

    async def _iso_connect(self) -> None:
        params = struct.pack(">BBHBBHBBB", 0xC1, 2, self._local, 0xC2, 2, self._remote, 0xC0, 1, _TPDU_1024)
        request = struct.pack(">BBHHB", 6 + len(params), _COTP_CR, 0, 1, 0) + params
        if self._writer is None:
            raise LinkDown("not connected")
        self._writer.write(struct.pack(">BBH", 3, 0, 4 + len(request)) + request)
        reply = await self._frame()
        if len(reply) < 2:
            raise LinkRefused(f"COTP reply of {len(reply)} bytes")
        if reply[1] == _COTP_DR:
            reason = reply[6] if len(reply) > 6 else 0
            raise LinkRefused(f"the PLC refused the ISO connection (COTP disconnect, reason 0x{reason:02X}): "
                              f"{_REFUSED_AT_ISO}")  # fmt: skip
        if reply[1] != _COTP_CC:
            raise LinkRefused(f"COTP reply type 0x{reply[1]:02X} is not a connection confirm")

    async def _send(self, payload: bytes) -> None:
        if self._writer is None:
            raise LinkDown("not connected")
        frame = struct.pack(">BBHBBB", 3, 0, 7 + len(payload), 2, _COTP_DT, 0x80) + payload
        try:
            self._writer.write(frame)
            await self._writer.drain()
        except OSError as exc:
            raise LinkDown(f"send failed: {exc.strerror or exc}") from None

    async def _frame(self) -> bytes:
        """One TPKT frame's COTP part."""
        if self._reader is None:
            raise LinkDown("not connected")
        try:
            header = await self._reader.readexactly(4)
            if header[0] != 3:
                raise LinkDown(f"TPKT version {header[0]} (not 3): not an S7 / ISO-on-TCP peer")
            length = struct.unpack(">H", header[2:4])[0]
            if length < 7:
                raise LinkDown(f"TPKT length {length} is below 7")
            return await self._reader.readexactly(length - 4)
        except asyncio.IncompleteReadError:
            raise LinkDown("the PLC closed the connection") from None
        except OSError as exc:
            raise LinkDown(f"receive failed: {exc.strerror or exc}") from None

    async def _receive(self) -> bytes:
        """One S7 PDU, reassembled from COTP data units until the one marked last."""
        parts: list[bytes] = []
        while True:
            cotp = await self._frame()
            if cotp[1] == _COTP_DR:
                raise LinkDown("the PLC sent a COTP disconnect request")
            if cotp[1] != _COTP_DT or cotp[0] < 2:
                raise LinkDown(f"COTP type 0x{cotp[1]:02X} where data was expected")
            parts.append(cotp[1 + cotp[0] :])
            if cotp[2] & 0x80:
                return b"".join(parts)
