"""A simulated scale behind a pseudo-terminal: MT-SICS (Mettler Toledo) or Sartorius SBI, for tests and the demo.

The bridge opens ``port`` (the pty's slave, or a symlink to it, like a udev ``/dev/serial/by-id`` link);
this end answers the commands it reads. ``unplug()``/``plug()`` make the port vanish and come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tty
from pathlib import Path
from typing import Literal, Self

__all__ = ["SimulatedScale"]

_CAPACITY_KG = 3000.0


class SimulatedScale:
    """A scale on a pty: ``load()`` puts weight on it, which settles after ``settle_s``.

    Args:
        protocol: ``mt_sics`` (answers S, SI, Z, T, @; ES otherwise) or ``sartorius`` (ESC P prints, ESC T tares).
        link: a symlink made to the port (kept across ``unplug``/``plug``); None = the pty's own path.
        decimals: decimals of the weights it sends (in kg).
    """

    def __init__(
        self, *, protocol: Literal["mt_sics", "sartorius"] = "mt_sics", link: Path | None = None, decimals: int = 3
    ) -> None:
        self.protocol = protocol
        self._link = link
        self._decimals = decimals
        self._fds: tuple[int, int] | None = None
        self._path = ""
        self._buffer = b""
        self._gross = 0.0
        self._zero = 0.0
        self._tare = 0.0
        self._settled_at = 0.0
        self.silent = False
        """True: read commands but answer nothing (a scale switched to another mode, a cut TX wire)."""
        self.commands: list[bytes] = []
        """Every command read, in order."""

    @property
    def port(self) -> str:
        """What the bridge opens."""
        return str(self._link) if self._link is not None else self._path

    @property
    def net(self) -> float:
        """The weight it reports now (kg)."""
        return round(self._gross - self._zero - self._tare, self._decimals)

    async def __aenter__(self) -> Self:
        self.plug()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.unplug()

    def load(self, kg: float, *, settle_s: float = 0.0) -> None:
        """Put ``kg`` (gross) on the scale; it reads dynamic for ``settle_s``."""
        self._gross = kg
        self._settled_at = time.monotonic() + settle_s

    def plug(self) -> None:
        """A new pty (the device plugged in), linked from ``link``."""
        if self._fds is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing before the bridge configures the port itself
        os.set_blocking(master, False)
        self._fds = (master, slave)
        self._path = os.ttyname(slave)
        if self._link is not None:
            with contextlib.suppress(FileNotFoundError):
                self._link.unlink()
            self._link.symlink_to(self._path)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def unplug(self) -> None:
        """The device unplugged: the pty closed and the link removed; the bridge's reads fail."""
        if self._fds is None:
            return
        master, slave = self._fds
        self._fds = None
        asyncio.get_running_loop().remove_reader(master)
        os.close(master)
        os.close(slave)
        if self._link is not None:
            with contextlib.suppress(FileNotFoundError):
                self._link.unlink()

    def send(self, data: bytes) -> None:
        """Bytes out of the scale as they are (unsolicited output, garbage on the line)."""
        if self._fds is not None:
            os.write(self._fds[0], data)

    def _readable(self) -> None:
        if self._fds is None:  # pragma: no cover  (the reader is removed with the fds)
            return
        try:
            data = os.read(self._fds[0], 4096)
        except BlockingIOError:  # pragma: no cover
            return
        except OSError:
            return  # EIO: nobody has the slave open right now
        self._buffer += data
        while b"\r\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\r\n")
            self.commands.append(line)
            if not self.silent:
                answer = self._mt_sics(line) if self.protocol == "mt_sics" else self._sartorius(line)
                if answer:
                    self.send(answer + b"\r\n")

    def _stable(self) -> bool:
        return time.monotonic() >= self._settled_at

    def _weight(self, status: str) -> bytes:
        return f"S {status} {self.net:>10.{self._decimals}f} kg".encode()

    def _mt_sics(self, line: bytes) -> bytes:
        command = line.decode("latin-1").strip()
        overload = self._gross > _CAPACITY_KG
        if command in ("S", "SI"):
            if overload:
                return b"S +"
            if self._stable():
                return self._weight("S")
            return self._weight("D") if command == "SI" else b"S I"
        if command == "Z":
            if not self._stable():
                return b"Z I"
            self._zero, self._tare = self._gross, 0.0
            return b"Z A"
        if command == "T":
            if not self._stable():
                return b"T I"
            self._tare = self._gross - self._zero
            return f"T S {self._tare:>10.{self._decimals}f} kg".encode()
        if command == "TA":
            return f"TA A {self._tare:>10.{self._decimals}f} kg".encode()
        if command == "@":
            self._tare = 0.0
            return b'I4 A "SIM0001"'
        return b"ES"

    def _sartorius(self, line: bytes) -> bytes:
        if line == b"\x1bP":
            if self._gross > _CAPACITY_KG:
                return b"       H      "
            value = self.net
            unit = "kg " if self._stable() else "   "
            return f"{'-' if value < 0 else '+'} {abs(value):>8.{self._decimals}f} {unit}".encode()
        if line == b"\x1bT":
            self._tare = self._gross - self._zero
        return b""
