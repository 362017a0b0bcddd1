"""PlcSource: polls PLCs through their drivers, with reconnect backoff, fail-fast refusals and half-open detection."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Sequence
from typing import Self, TypeVar

from bridges.plc.device import GroupRead, PlcDevice
from bridges.source import DeviceDown, PollClock, Sample, Samples, SourceEvent, SourceTasks, TagSpec, poll_rounds
from model.envelope import Quality
from uns.backoff import Backoff
from uns.clock import now_ms
from uns.errors import BridgeError, DeviceRefused, DeviceUnreachable
from uns.logs import RateLimitedLog
from uns.sparkplug import MetricValue

__all__ = ["PlcSource", "read_deadline_s"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_WARN_EVERY_S = 60.0
"""A tag problem is logged at most this often per device, address and reason."""
_QUEUE_SIZE = 256
"""Events waiting for the consumer; beyond it the pollers wait (back-pressure, nothing dropped)."""
_MAX_REFUSALS_REMEMBERED = 64
"""Distinct refusal reasons kept per device so each is logged once (bounded against a PLC that varies its text)."""


def read_deadline_s(timeout_s: float) -> float:
    """How long one poll may take before the connection counts as dead (half-open): 2 x the timeout + 1 s."""
    return timeout_s * 2 + 1.0


class _Lost(Exception):
    """The connection to a device is gone (or was refused); handled inside this module only."""

    def __init__(self, error: BridgeError) -> None:
        self.error = error
        super().__init__(str(error))


class _Link:
    """One device's connection state, shared by its poll groups and writes; ``lock`` serialises every call."""

    def __init__(self, device: PlcDevice) -> None:
        self.device = device
        self.lock = asyncio.Lock()
        self.backoff = Backoff(min_s=device.settings.backoff_min_s, max_s=device.settings.backoff_max_s)
        self.connected = False
        self.not_before = 0.0
        """No connect attempt before this monotonic time (the backoff earned)."""
        self.down = False
        """True from a failure until a read succeeds again: one DeviceDown per outage."""
        self.refusals: set[str] = set()
        """Refusal reasons already logged as ERROR in this run of refusals."""


class PlcSource:
    """Every PLC of one bridge: tags, polling by group, writes; the drivers only speak their protocol.

    ``events()`` runs one task per device and poll group (``plc.<kind>.<bridge>.<device>.<group>``).
    A device that is down at start or stops answering yields one ``DeviceDown`` per outage and is
    reconnected with exponential backoff and jitter; a PLC that refuses the connection
    (``DeviceRefused``) is logged as an ERROR once per distinct reason and retried only at the
    maximum backoff. Each poll runs under a deadline of ``2 x timeout_s + 1`` so a half-open TCP
    connection is found. A ``TagProblem`` marks just its tags bad, with one rate-limited WARNING per
    (device, address, reason). Connection errors a driver forgot to wrap (``OSError``, ``EOFError``)
    count as the connection lost; any other exception is a bug and is raised from ``events()``.
    """

    def __init__(self, *, name: str, kind: str, devices: Sequence[PlcDevice]) -> None:
        self.name = name
        self.kind = kind
        self._devices: dict[str, PlcDevice] = {}
        self._tags: dict[str, dict[str, TagSpec]] = {}
        for device in devices:
            if device.id in self._devices:
                raise ValueError(f"{kind} bridge {name}: device id {device.id!r} used twice")
            self._devices[device.id] = device
            tags = list(device.tags())
            for tag in tags:
                if tag.device != device.id:
                    raise ValueError(f"{kind} bridge {name}: device {device.id} gives tag {tag.name} of {tag.device!r}")
            self._tags[device.id] = {tag.name: tag for tag in tags}
        self._links: dict[str, _Link] = {}
        self._warn = RateLimitedLog(log, interval_s=_WARN_EVERY_S)

    async def __aenter__(self) -> Self:
        """Prepare each device's link; connections open on first use (a device down at start is not an error)."""
        self._links = {device_id: _Link(device) for device_id, device in self._devices.items()}
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close every connection."""
        links, self._links = self._links, {}
        for link in links.values():
            await self._close(link)

    def tags(self) -> Sequence[TagSpec]:
        """Every tag of every device, in device order."""
        return [tag for tags in self._tags.values() for tag in tags.values()]

    async def events(self) -> AsyncGenerator[SourceEvent, None]:
        """Poll every device's groups until cancelled; yields ``Samples`` per group read and ``DeviceDown``."""
        if not self._links:
            raise RuntimeError(f"{self.kind} bridge {self.name}: enter the source (async with) before events()")
        tasks: SourceTasks[SourceEvent] = SourceTasks(f"plc.{self.kind}.{self.name}", maxsize=_QUEUE_SIZE)
        try:
            for device_id, link in self._links.items():
                for group, interval in link.device.poll_groups().items():
                    read_round = functools.partial(self._round, link, group, tasks)
                    tasks.start(poll_rounds(interval, read_round), f"{device_id}.{group}")
            while True:
                yield await tasks.get()
        finally:
            await tasks.stop()

    async def _round(self, link: _Link, group: str, tasks: SourceTasks[SourceEvent], clock: PollClock) -> bool:
        """One read of a poll group; False when the connection is lost (retried after the link's backoff)."""
        device = link.device
        wait = link.not_before - time.monotonic()
        if not link.connected and wait > 0:
            await asyncio.sleep(wait)
        try:
            async with link.lock:
                if not link.connected:
                    if link.not_before > time.monotonic():
                        return False  # another group failed to connect meanwhile: wait its backoff
                    await self._connect(link)
                    clock.restart()
                read = await self._call(link, device.read(group), read_deadline_s(device.settings.timeout_s),
                                        f"read of poll group {group}")  # fmt: skip
        except _Lost as lost:
            if not link.down:
                link.down = True
                log.warning("%s %s: device %s down: %s", self.kind, self.name, device.id, lost.error)
                await tasks.put(DeviceDown(device=device.id, reason=str(lost.error)))
            return False
        if link.down:
            log.info("%s %s: device %s (%s) is back", self.kind, self.name, device.id, device.endpoint)
        link.down = False
        link.backoff.succeeded()
        link.refusals.clear()
        await tasks.put(Samples(device=device.id, samples=self._checked(device, read)))
        return True

    def _checked(self, device: PlcDevice, read: GroupRead) -> list[Sample]:
        """The read's samples, with every tag a problem names forced bad; each problem logged (rate-limited)."""
        bad: set[str] = set()
        for problem in read.problems:
            bad.update(problem.tags)
            self._warn.warning(
                f"{device.id}\x00{problem.address}\x00{problem.reason}",
                "%s %s: device %s (%s): %s: %s; bad: %s",
                self.kind, self.name, device.id, device.endpoint, problem.address, problem.reason,
                ", ".join(problem.tags),
            )  # fmt: skip
        return [
            sample
            if sample.name not in bad or (sample.value is None and sample.quality is Quality.bad)
            else Sample(name=sample.name, value=None, timestamp_ms=sample.timestamp_ms or now_ms(), quality=Quality.bad)
            for sample in read.samples
        ]

    async def _connect(self, link: _Link) -> None:
        """Connect (the caller holds the lock and waited the backoff); raises ``_Lost`` after handling a failure."""
        device = link.device
        await self._call(link, device.connect(), device.settings.connect_timeout_s, "connect")
        link.connected = True
        log.info("%s %s: connected to device %s (%s)", self.kind, self.name, device.id, device.endpoint)

    async def _call(self, link: _Link, call: Awaitable[_T], deadline_s: float, what: str) -> _T:
        """Await one driver call under a deadline; any sign of a lost connection closes it and raises ``_Lost``."""
        device = link.device
        error: BridgeError
        try:
            async with asyncio.timeout(deadline_s):
                return await call
        except DeviceRefused as exc:
            await self._lost(link, exc)
            raise _Lost(exc) from exc
        except DeviceUnreachable as exc:
            error = exc
        except BridgeError:
            raise  # the PLC answered (a refused write, a value that does not fit): the connection is fine
        except TimeoutError:
            half_open = " (a half-open connection: the PLC or the network is gone)" if what != "connect" else ""
            error = DeviceUnreachable(
                self.name, device.endpoint, f"device {device.id}: {what}: no answer within {deadline_s:g} s{half_open}"
            )
        except (OSError, EOFError) as exc:  # a driver that did not wrap its socket's error: still just a lost link
            error = DeviceUnreachable(
                self.name, device.endpoint, f"device {device.id}: {what}: connection lost ({type(exc).__name__}: {exc})"
            )
        await self._lost(link, error)
        raise _Lost(error)

    async def _lost(self, link: _Link, error: BridgeError) -> None:
        """Close the connection and schedule the next attempt: at the maximum backoff after a refusal."""
        device = link.device
        link.connected = False
        await self._close(link)
        if isinstance(error, DeviceRefused):
            delay = link.backoff.at_max()
            reason = str(error)
            if reason not in link.refusals:
                if len(link.refusals) >= _MAX_REFUSALS_REMEMBERED:
                    link.refusals.clear()
                link.refusals.add(reason)
                log.error("%s %s: device %s refused: %s; retrying every %g s at most until that is fixed",
                          self.kind, self.name, device.id, error, device.settings.backoff_max_s)  # fmt: skip
        else:
            delay = link.backoff.failed()
            log.debug("%s %s: device %s: %s; reconnecting in %.2f s", self.kind, self.name, device.id, error, delay)
        link.not_before = time.monotonic() + delay

    async def _close(self, link: _Link) -> None:
        device = link.device
        try:
            async with asyncio.timeout(device.settings.connect_timeout_s):
                await device.close()
        except (BridgeError, OSError, EOFError) as exc:  # TimeoutError is an OSError
            log.debug("%s %s: closing device %s: %s", self.kind, self.name, device.id, exc)

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """Write one tag through its device's driver (from a DCMD).

        Raises:
            BridgeError: unknown device or tag, or a tag that is not writable (the driver adds: a value that
                does not fit), naming the device and tag.
            DeviceUnreachable: the device is down, reconnecting, or did not answer in time.
            DeviceRefused: the PLC refused the connection.
            ReadError: the PLC refused the write (with the address and end code).
        """
        link = self._links.get(device)
        if link is None:
            raise BridgeError(self.name, self.kind, f"write: no device {device!r}")
        plc = link.device
        tag = self._tags[device].get(name)
        if tag is None:
            raise BridgeError(self.name, plc.endpoint, f"write: device {device!r} has no tag {name!r}")
        if not tag.writable:
            raise BridgeError(self.name, plc.endpoint, f"write: device {device}: tag {name} is not writable")
        if link.down:
            raise DeviceUnreachable(self.name, plc.endpoint, f"write of {name}: device {device} is down")
        async with link.lock:
            try:
                if not link.connected:
                    if link.not_before > time.monotonic():
                        raise DeviceUnreachable(
                            self.name, plc.endpoint, f"write of {name}: device {device} is reconnecting"
                        )
                    await self._connect(link)
                await self._call(
                    link, plc.write(name, value), read_deadline_s(plc.settings.timeout_s), f"write of {name}"
                )
            except _Lost as lost:
                raise lost.error from None
        log.info("%s %s: wrote %r to device %s tag %s", self.kind, self.name, value, device, name)
