"""The GPIO source: each chip's inputs as states or debounced pulse counters, its outputs written from DCMD."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Self

from bridges.gpio.debounce import Debouncer
from bridges.gpio.lines import Edge, LineProvider, LineRequest, LineSpec
from bridges.source import DeviceDown, Sample, Samples, SourceEvent, SourceTasks, TagSpec
from model.bridges.gpio import GpioBridgeConfig, GpioDevice, GpioInput
from uns.backoff import Backoff
from uns.clock import now_ms, now_ns
from uns.errors import BridgeError, DeviceUnreachable
from uns.sparkplug import DataType, MetricValue

__all__ = ["GpioSource"]

log = logging.getLogger(__name__)

_QUEUE = 256  # readings waiting for the edge node; beyond it the chips wait (nothing dropped)


def _wall_ms(monotonic_ns: int) -> int:
    """A provider's monotonic stamp as wall-clock milliseconds (the kernel stamps edges on CLOCK_MONOTONIC)."""
    return (now_ns() - (time.monotonic_ns() - monotonic_ns)) // 1_000_000


class _Chip:
    """One device: takes its lines (retaken with backoff when the chip is lost) and turns edges into samples."""

    def __init__(
        self, bridge: str, config: GpioDevice, provider: LineProvider, queue: SourceTasks[SourceEvent]
    ) -> None:
        self.bridge = bridge
        self.config = config
        self._provider = provider
        self._queue = queue
        self.request: LineRequest | None = None
        self.counts = {i.name: 0 for i in config.inputs if i.mode == "counter"}
        """Pulses since the bridge started (kept across a lost chip)."""
        self._outputs = {o.name: o for o in config.outputs}
        self._specs = [LineSpec(i.line, False, i.active_low, i.bias) for i in config.inputs] + [
            LineSpec(o.line, True, o.active_low, initial=o.initial) for o in config.outputs
        ]
        self._down = False

    async def run(self) -> None:
        config = self.config
        backoff = Backoff(min_s=config.backoff_min_s, max_s=config.backoff_max_s)
        while True:
            try:
                request = self._provider.request(config.chip, f"uns-{self.bridge}", self._specs)
            except OSError as exc:
                await self._lost(f"cannot take lines of {config.chip}: {exc}")
                await asyncio.sleep(backoff.failed())
                continue
            self.request = request
            try:
                await self._serve(request, backoff)
            except OSError as exc:
                await self._lost(f"{config.chip}: {exc}")
            finally:
                self.request = None
                with contextlib.suppress(OSError):
                    request.close()
            await asyncio.sleep(backoff.failed())

    async def _lost(self, reason: str) -> None:
        if not self._down:
            self._down = True
            log.warning("gpio %s: device %s down: %s", self.bridge, self.config.id, reason)
            await self._queue.put(DeviceDown(self.config.id, reason))

    async def _serve(self, request: LineRequest, backoff: Backoff) -> None:
        now_ns = time.monotonic_ns()
        inputs = {str(i.line): i for i in self.config.inputs}
        debouncers = {
            key: Debouncer(period_ns=round(i.debounce_ms * 1_000_000), level=request.get(i.line))
            for key, i in inputs.items()
        }
        stamp = _wall_ms(now_ns)
        first = [Sample(i.name, debouncers[str(i.line)].level, stamp) for i in self.config.inputs if i.mode == "state"]
        first += [Sample(name, count, stamp) for name, count in self.counts.items()]
        first += [Sample(o.name, request.get(o.line), stamp) for o in self.config.outputs]
        await self._queue.put(Samples(self.config.id, first))
        if self._down:
            log.info("gpio %s: device %s (%s) is back", self.bridge, self.config.id, self.config.chip)
        self._down = False
        backoff.succeeded()
        while True:
            due = [d for d in (deb.due_ns() for deb in debouncers.values()) if d is not None]
            wait_s = max(0.0, (min(due) - time.monotonic_ns()) / 1e9) if due else None
            edges: list[Edge] = []
            if inputs:
                try:
                    async with asyncio.timeout(wait_s):
                        edges = await request.edges()
                except TimeoutError:
                    pass  # a pending level is due: settle it below
            else:
                await asyncio.Event().wait()  # outputs only: nothing to read
            samples: list[Sample] = []
            for edge in edges:
                key = str(edge.line)
                level = debouncers[key].edge(edge.value, edge.timestamp_ns)
                if level is not None:
                    samples += self._confirmed(inputs[key], debouncers[key])
            now_ns = time.monotonic_ns()
            for key, debouncer in debouncers.items():
                if debouncer.settle(now_ns) is not None:
                    samples += self._confirmed(inputs[key], debouncer)
            if samples:
                await self._queue.put(Samples(self.config.id, samples))

    def _confirmed(self, config: GpioInput, debouncer: Debouncer) -> list[Sample]:
        stamp = _wall_ms(debouncer.changed_ns)
        if config.mode == "state":
            return [Sample(config.name, debouncer.level, stamp)]
        if debouncer.level != (config.edge == "rising"):
            return []
        self.counts[config.name] += 1
        return [Sample(config.name, self.counts[config.name], stamp)]

    async def write(self, name: str, value: MetricValue) -> None:
        output = self._outputs.get(name)
        if output is None:
            raise BridgeError(self.bridge, self.config.chip, f"write: device {self.config.id}: {name} is not an output")
        if not isinstance(value, bool):
            raise BridgeError(self.bridge, self.config.chip, f"write: {name} takes a Boolean (got {value!r})")
        request = self.request
        if request is None:
            raise DeviceUnreachable(self.bridge, self.config.chip, f"write of {name}: device {self.config.id} is down")
        try:
            request.set(output.line, value)
        except OSError as exc:
            raise DeviceUnreachable(self.bridge, self.config.chip, f"write of {name}: {exc}") from exc
        log.info("gpio %s: device %s: %s = %s", self.bridge, self.config.id, name, value)
        await self._queue.put(Samples(self.config.id, [Sample(name, value, now_ms())]))


class GpioSource:
    """A ``Source`` for ``kind: gpio``.

    Args:
        config: the bridge's config.
        provider: where lines come from: ``GpiodProvider`` on a board, ``MemoryGpio`` in tests.
    """

    def __init__(self, *, config: GpioBridgeConfig, provider: LineProvider) -> None:
        self.name = config.name
        self._queue: SourceTasks[SourceEvent] = SourceTasks(f"gpio[{config.name}]", maxsize=_QUEUE)
        self.chips = {device.id: _Chip(config.name, device, provider, self._queue) for device in config.devices}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._queue.stop()

    def tags(self) -> Sequence[TagSpec]:
        """Inputs (Boolean states, Int64 counters), then outputs (writable Booleans), per device."""
        tags: list[TagSpec] = []
        for chip in self.chips.values():
            device = chip.config
            for i in device.inputs:
                counter = i.mode == "counter"
                datatype = DataType.Int64 if counter else DataType.Boolean
                what = f"{i.edge} pulses on line {i.line}" if counter else f"line {i.line}"
                tags.append(TagSpec(device.id, i.name, datatype, description=what))
            tags += [TagSpec(device.id, o.name, DataType.Boolean, writable=True) for o in device.outputs]
        return tags

    async def events(self) -> AsyncIterator[SourceEvent]:
        """Readings and ``DeviceDown`` of every chip until cancelled; a chip task's crash is raised here."""
        for chip in self.chips.values():
            self._queue.start(chip.run(), chip.config.id)
        try:
            while True:
                yield await self._queue.get()
        finally:
            await self._queue.stop()

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """Drive an output from a DCMD; raises ``BridgeError`` naming device and metric."""
        chip = self.chips.get(device)
        if chip is None:
            raise BridgeError(self.name, "gpio", f"write: no device {device!r}")
        await chip.write(name, value)
