"""GPIO chips in memory behind the line-provider interface: for tests, and machines without a GPIO chip.

A test drives input levels (with the times it chooses, to play contact bounce) and reads what the
source drove on outputs. It is an outside world stand-in, like a simulator: the source's logic is
the same code that runs on libgpiod.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from bridges.gpio.lines import Edge, LineSpec
from model.bridges.gpio import LineId

__all__ = ["MemoryChip", "MemoryGpio"]


class MemoryChip:
    """One chip: ``count`` lines, optionally named; voltage levels the test sets, outputs the source sets.

    Args:
        count: number of lines (offsets 0..count-1).
        names: line name -> offset.
    """

    def __init__(self, *, count: int = 32, names: dict[str, int] | None = None) -> None:
        self.count = count
        self.names = dict(names or {})
        self.high = [False] * count
        """Each line's voltage level (True = high)."""
        self._requests: list[_MemoryRequest] = []
        self.present = True
        """False: the chip is gone (unplugged expander); requests fail and open ones see OSError."""

    def offset(self, line: LineId) -> int:
        """The offset of a line given by offset or name; ``OSError`` if there is none."""
        if isinstance(line, str):
            if line not in self.names:
                raise OSError(f"no line named {line!r}")
            return self.names[line]
        if not 0 <= line < self.count:
            raise OSError(f"no line {line} (the chip has {self.count})")
        return line

    def drive(self, line: LineId, high: bool, *, at_ns: int | None = None) -> None:
        """Set an input's voltage; requests watching it get an edge stamped ``at_ns`` (default now)."""
        offset = self.offset(line)
        if self.high[offset] == high:
            return
        self.high[offset] = high
        stamp = time.monotonic_ns() if at_ns is None else at_ns
        for request in self._requests:
            request.changed(offset, stamp)

    def unplug(self) -> None:
        """The chip disappears: open requests fail on their next wait."""
        self.present = False
        for request in self._requests:
            request.fail(OSError("the GPIO chip is gone"))

    def _attach(self, request: _MemoryRequest) -> None:
        self._requests.append(request)

    def _detach(self, request: _MemoryRequest) -> None:
        if request in self._requests:
            self._requests.remove(request)


class _MemoryRequest:
    def __init__(self, chip: MemoryChip, lines: Sequence[LineSpec]) -> None:
        self._chip = chip
        self._specs = {chip.offset(spec.line): spec for spec in lines}
        self._queue: asyncio.Queue[Edge | OSError] = asyncio.Queue()
        for offset, spec in self._specs.items():
            if spec.output:
                chip.high[offset] = spec.initial != spec.active_low

    def _logical(self, offset: int) -> bool:
        return self._chip.high[offset] != self._specs[offset].active_low

    def get(self, line: LineId) -> bool:
        return self._logical(self._chip.offset(line))

    def set(self, line: LineId, value: bool) -> None:
        offset = self._chip.offset(line)
        spec = self._specs.get(offset)
        if spec is None or not spec.output:
            raise OSError(f"line {line} is not an output of this request")
        self._chip.high[offset] = value != spec.active_low

    def changed(self, offset: int, at_ns: int) -> None:
        spec = self._specs.get(offset)
        if spec is not None and not spec.output:
            self._queue.put_nowait(Edge(spec.line, self._logical(offset), at_ns))

    def fail(self, error: OSError) -> None:
        self._queue.put_nowait(error)

    async def edges(self) -> list[Edge]:
        out: list[Edge] = []
        item = await self._queue.get()
        while True:
            if isinstance(item, OSError):
                raise item
            out.append(item)
            if self._queue.empty():
                return out
            item = self._queue.get_nowait()

    def close(self) -> None:
        self._chip._detach(self)


class MemoryGpio:
    """A line provider over ``MemoryChip``s by path (``/dev/gpiochip0`` ...)."""

    def __init__(self, chips: dict[str, MemoryChip]) -> None:
        self.chips = chips
        self.requests = 0
        """Requests made (first takes and retakes after a loss)."""

    def request(self, chip: str, consumer: str, lines: Sequence[LineSpec]) -> _MemoryRequest:
        """Take ``lines``; ``FileNotFoundError`` for a chip that is not there."""
        memory = self.chips.get(chip)
        if memory is None or not memory.present:
            raise FileNotFoundError(f"no GPIO chip {chip}")
        self.requests += 1
        request = _MemoryRequest(memory, lines)
        memory._attach(request)
        return request
