"""The libgpiod v2 line provider (``gpiod`` 2.x): lines of a ``/dev/gpiochipN``, edges read when its fd is ready."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import gpiod
from gpiod.line import Bias, Direction, Value
from gpiod.line import Edge as EdgeDetection

from bridges.gpio.lines import Edge, LineSpec
from model.bridges.gpio import LineId

__all__ = ["GpiodProvider"]

_BIAS = {"as_is": Bias.AS_IS, "pull_up": Bias.PULL_UP, "pull_down": Bias.PULL_DOWN, "disabled": Bias.DISABLED}


class _GpiodRequest:
    def __init__(self, request: gpiod.LineRequest, offsets: dict[int, LineId]) -> None:
        self._request = request
        self._lines = offsets  # offset -> the line as configured
        self._offsets = {line: offset for offset, line in offsets.items()}

    def get(self, line: LineId) -> bool:
        return bool(self._request.get_value(self._offsets[line]))

    def set(self, line: LineId, value: bool) -> None:
        self._request.set_value(self._offsets[line], Value.ACTIVE if value else Value.INACTIVE)

    async def edges(self) -> list[Edge]:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = self._request.fd

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, readable)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        events = self._request.read_edge_events()
        return [
            Edge(self._lines[e.line_offset], e.event_type is gpiod.EdgeEvent.Type.RISING_EDGE, e.timestamp_ns)
            for e in events
        ]

    def close(self) -> None:
        self._request.release()


class GpiodProvider:
    """Lines through the kernel's GPIO character device; edges stamped by the kernel (CLOCK_MONOTONIC).

    Debouncing is left to the source (``debounce.py``), the same on every chip: not all GPIO drivers
    debounce in hardware, and the kernel's software fallback needs an interrupt per bounce anyway.
    """

    def request(self, chip: str, consumer: str, lines: Sequence[LineSpec]) -> _GpiodRequest:
        """Take ``lines`` of ``chip`` (names resolved to offsets); ``OSError`` if the chip or a line is not there."""
        with gpiod.Chip(chip) as opened:
            offsets = {opened.line_offset_from_id(spec.line): spec for spec in lines}
        config: dict[int | str | tuple[int | str, ...], gpiod.LineSettings | None] = {}
        for offset, spec in offsets.items():
            if spec.output:
                settings = gpiod.LineSettings(
                    direction=Direction.OUTPUT,
                    active_low=spec.active_low,
                    output_value=Value.ACTIVE if spec.initial else Value.INACTIVE,
                )
            else:
                settings = gpiod.LineSettings(
                    direction=Direction.INPUT,
                    edge_detection=EdgeDetection.BOTH,
                    bias=_BIAS[spec.bias],
                    active_low=spec.active_low,
                )
            config[offset] = settings
        request = gpiod.request_lines(chip, config=config, consumer=consumer)  # type: ignore[arg-type]
        return _GpiodRequest(request, {offset: spec.line for offset, spec in offsets.items()})
