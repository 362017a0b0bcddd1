"""Admission of new connections: a bounded pool of pending handshakes, then a connection slot or CONNACK 3.

A connection that has not sent a whole CONNECT holds no slot of ``limits.max_connections``: it waits
in its listener's :class:`PendingPool` (at most ``limits.max_pending_connections``, each for at most
``limits.connect_timeout_s``; when the pool is full the oldest pending connection is closed). Only a
whole CONNECT, buffered in the reader, asks :class:`Slots` for a slot; amqtt then reads it without
waiting on the network. Half-open sockets and slow CONNECTs therefore cannot keep a real client out.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses

from uns.broker.preface import Peek, Verdict, check_preface

__all__ = ["CONNACK_SERVER_UNAVAILABLE", "Handshake", "PendingPool", "Slots", "read_connect"]

CONNACK_SERVER_UNAVAILABLE = 0x03
_CONNECT_TYPE = 1


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Handshake:
    """How a connection's first packet ended: a whole CONNECT (``cause`` None) or why not."""

    cause: str | None = None
    """None, or ``no data`` (a port check), ``not a CONNECT``, ``bad remaining length``,
    ``closed mid-CONNECT``, ``timeout`` or ``dropped (pending pool full)``."""
    verdict: Verdict | None = None
    """The protocol check (:func:`uns.broker.preface.check_preface`); None for plain MQTT 3.1.1."""
    size: int = 0
    """Bytes of the whole CONNECT (fixed header included)."""
    header_length: int = 0
    """Bytes of its fixed header."""


async def _fixed_header(peek: Peek) -> tuple[int, int] | str:
    """(fixed header bytes, remaining length) of the first packet, or why it cannot be read."""
    remaining, multiplier = 0, 1
    for index in range(1, 5):
        data = await peek(index + 1)
        if len(data) <= index:
            return "closed mid-CONNECT"
        remaining += (data[index] & 0x7F) * multiplier
        multiplier *= 128
        if not data[index] & 0x80:
            return index + 1, remaining
    return "bad remaining length"


async def read_connect(peek: Peek, *, max_size: int) -> Handshake:
    """Peek a connection's first packet until the whole CONNECT is buffered (or the protocol refused).

    A CONNECT longer than ``max_size`` is not buffered: the reader's own size check refuses it.
    """
    first = await peek(1)
    if not first:
        return Handshake(cause="no data")
    if first[0] >> 4 != _CONNECT_TYPE:
        return Handshake(cause="not a CONNECT")
    header = await _fixed_header(peek)
    if isinstance(header, str):
        return Handshake(cause=header)
    header_length, remaining = header
    verdict = await check_preface(peek)
    if verdict is not None and verdict.refuse:
        return Handshake(verdict=verdict, size=header_length + remaining, header_length=header_length)
    size = header_length + remaining
    if size <= max_size and len(await peek(size)) < size:
        return Handshake(cause="closed mid-CONNECT")
    return Handshake(verdict=verdict, size=size, header_length=header_length)


@dataclasses.dataclass(slots=True)
class _Pending:
    timeout: asyncio.Timeout
    dropped: bool = False


class PendingPool:
    """Connections of one listener reading their CONNECT: at most ``size``, each for ``timeout_s``."""

    def __init__(self, *, size: int, timeout_s: float) -> None:
        self._size = size
        self._timeout_s = timeout_s
        self._entries: collections.OrderedDict[int, _Pending] = collections.OrderedDict()
        self._next = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def handshake(self, peek: Peek, *, max_size: int) -> Handshake:
        """:func:`read_connect` within the deadline; makes room by closing the oldest pending when full."""
        loop = asyncio.get_running_loop()
        key, self._next = self._next, self._next + 1
        entry = _Pending(asyncio.timeout(self._timeout_s))
        try:
            async with entry.timeout:
                while len(self._entries) >= self._size:
                    _, oldest = self._entries.popitem(last=False)
                    oldest.dropped = True
                    oldest.timeout.reschedule(loop.time())  # its read ends with TimeoutError at once
                self._entries[key] = entry
                return await read_connect(peek, max_size=max_size)
        except TimeoutError:
            return Handshake(cause="dropped (pending pool full)" if entry.dropped else "timeout")
        except (ConnectionError, asyncio.IncompleteReadError):
            return Handshake(cause="closed mid-CONNECT")
        finally:
            self._entries.pop(key, None)


class Slots:
    """Connected clients per listener, at most ``limit`` each (amqtt's own waiting semaphore is off)."""

    def __init__(self, *, limit: int) -> None:
        self._limit = limit
        self._used: dict[str, int] = {}

    def used(self, listener: str) -> int:
        """Slots taken on ``listener`` now."""
        return self._used.get(listener, 0)

    def take(self, listener: str) -> bool:
        """Take a slot on ``listener``; False when all ``limit`` are taken."""
        used = self._used.get(listener, 0)
        if used >= self._limit:
            return False
        self._used[listener] = used + 1
        return True

    def give(self, listener: str) -> None:
        """Give back a slot :meth:`take` took."""
        self._used[listener] = max(0, self._used.get(listener, 0) - 1)
