"""Bytes from a serial port cut into frames: by terminator, fixed length or STX/ETX (pure, no I/O).

Offsets count bytes since the port was opened, so a refusal names where in the stream it was. A bad
stretch is refused once and skipped; the frame after it is read as usual.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from model.bridges.serial import FixedFraming, Framing, StxEtxFraming, TerminatorFraming

__all__ = ["Frame", "FrameError", "Framer", "make_framer"]


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    """One frame's payload (framing bytes removed) and the stream offset of its first byte."""

    data: bytes
    offset: int


class FrameError(Exception):
    """Bytes that make no frame: where they start in the stream, and why."""

    def __init__(self, offset: int, reason: str) -> None:
        self.offset = offset
        self.reason = reason
        super().__init__(f"offset {offset}: {reason}")


class Framer(Protocol):
    """Takes bytes as they arrive; returns the frames (and refusals) they complete."""

    def feed(self, data: bytes, now_s: float) -> list[Frame | FrameError]:
        """Frames completed by ``data`` (arrived at monotonic ``now_s``), in stream order."""
        ...


class _TerminatorFramer:
    def __init__(self, config: TerminatorFraming) -> None:
        self._end = config.terminator.encode("latin-1")
        self._strip = config.strip.encode("latin-1")
        self._max = config.max_length
        self._buffer = bytearray()
        self._start = 0  # stream offset of _buffer[0]
        self._skipping = False  # an over-long frame was refused: drop bytes up to its terminator

    def feed(self, data: bytes, now_s: float) -> list[Frame | FrameError]:
        self._buffer += data
        out: list[Frame | FrameError] = []
        while True:
            end = self._buffer.find(self._end)
            if end < 0:
                if len(self._buffer) > self._max + len(self._end):
                    if not self._skipping:
                        out.append(FrameError(self._start, f"no terminator within {self._max} bytes"))
                        self._skipping = True
                    keep = len(self._end) - 1  # a terminator split across reads
                    dropped = len(self._buffer) - keep
                    del self._buffer[:dropped]
                    self._start += dropped
                return out
            raw = bytes(self._buffer[:end])
            offset = self._start
            del self._buffer[: end + len(self._end)]
            self._start += end + len(self._end)
            if self._skipping:
                self._skipping = False
                continue
            if len(raw) > self._max:
                out.append(FrameError(offset, f"frame of {len(raw)} bytes is longer than max_length {self._max}"))
                continue
            stripped = raw.lstrip(self._strip)
            payload = stripped.rstrip(self._strip)
            if payload:
                out.append(Frame(payload, offset + len(raw) - len(stripped)))


class _FixedFramer:
    def __init__(self, config: FixedFraming) -> None:
        self._length = config.length
        self._gap_s = config.gap_s
        self._buffer = bytearray()
        self._start = 0
        self._last_s: float | None = None

    def feed(self, data: bytes, now_s: float) -> list[Frame | FrameError]:
        out: list[Frame | FrameError] = []
        if self._buffer and self._last_s is not None and now_s - self._last_s > self._gap_s:
            out.append(FrameError(self._start, f"{len(self._buffer)} of {self._length} bytes, then a pause"))
            self._start += len(self._buffer)
            self._buffer.clear()
        self._last_s = now_s
        self._buffer += data
        while len(self._buffer) >= self._length:
            out.append(Frame(bytes(self._buffer[: self._length]), self._start))
            del self._buffer[: self._length]
            self._start += self._length
        return out


class _StxEtxFramer:
    def __init__(self, config: StxEtxFraming) -> None:
        self._stx = config.stx
        self._etx = config.etx
        self._bcc = config.bcc
        self._max = config.max_length
        self._buffer = bytearray()
        self._start = 0

    def feed(self, data: bytes, now_s: float) -> list[Frame | FrameError]:
        self._buffer += data
        out: list[Frame | FrameError] = []
        while self._buffer:
            stx = self._buffer.find(self._stx)
            if stx != 0:
                skipped = len(self._buffer) if stx < 0 else stx
                out.append(
                    FrameError(
                        self._start, f"{skipped} bytes outside STX/ETX: {bytes(self._buffer[: min(skipped, 16)])!r}"
                    )
                )
                self._drop(skipped)
                continue
            restart = self._buffer.find(self._stx, 1)
            etx = self._buffer.find(self._etx, 1)
            if restart > 0 and (etx < 0 or restart < etx):
                # a new STX before this frame's ETX: the frame was cut off (a resync)
                out.append(FrameError(self._start, "STX again before ETX (a frame cut off)"))
                self._drop(restart)
                continue
            if etx < 0:
                if len(self._buffer) > self._max + 2:
                    out.append(FrameError(self._start, f"no ETX within {self._max} bytes"))
                    self._drop(len(self._buffer))
                return out
            end = etx + 1 + int(self._bcc)
            if len(self._buffer) < end:
                return out  # the check byte has not arrived yet
            payload = bytes(self._buffer[1:etx])
            if self._bcc:
                want = 0
                for byte in self._buffer[1 : etx + 1]:
                    want ^= byte
                got = self._buffer[etx + 1]
                if got != want:
                    out.append(FrameError(self._start + etx + 1, f"block check 0x{got:02x}, expected 0x{want:02x}"))
                    self._drop(end)
                    continue
            out.append(Frame(payload, self._start + 1))
            self._drop(end)
        return out

    def _drop(self, count: int) -> None:
        del self._buffer[:count]
        self._start += count


def make_framer(config: Framing) -> Framer:
    """A fresh framer (a new one per connection: offsets start at 0)."""
    if isinstance(config, TerminatorFraming):
        return _TerminatorFramer(config)
    if isinstance(config, FixedFraming):
        return _FixedFramer(config)
    return _StxEtxFramer(config)
