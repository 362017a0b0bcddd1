"""The LwM2M server as a Source: registered clients are devices, their observed resources are metrics.

A client is down until it registers; its Register starts the observations (one observed read per
configured path, sent to the address the Register came from) and their answers become ``Samples``
(the first births the device). De-register, or a lifetime ending without an Update, is ``DeviceDown``
(DDEATH). A Register of an endpoint already registered replaces the old registration and restarts its
observations. A payload that cannot be read is refused with its byte or field, counted on the status
device, and the observation goes on: the device is kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path as FsPath
from typing import Self

import aiocoap.error  # type: ignore[import-untyped]  # no py.typed in aiocoap 0.4.17

from bridges.lwm2m.coap import CoapAnswer, CoapServer, Code, RdHandler, Remote
from bridges.lwm2m.content import FORMATS, Decoded, decode, encode_write
from bridges.lwm2m.ipso import Path, parse_path, resource_info
from bridges.lwm2m.registration import Registration, RegistrationRefused, Registry
from bridges.lwm2m.state import load_registrations, save_registrations
from bridges.lwm2m.tlv import ContentError
from bridges.source import DeviceDown, Sample, Samples, SourceEvent, TagSpec
from model.bridges.lwm2m import LWM2M_STATUS_DEVICE, Lwm2mBridgeConfig, Lwm2mDevice
from uns.clock import now_ms
from uns.errors import BridgeError, ReadError
from uns.event_wait import set_within
from uns.logs import RateLimitedLog
from uns.sparkplug import DataType, MetricValue

__all__ = ["Lwm2mSource"]

log = logging.getLogger(__name__)

_COUNTERS = {
    "registered": "Status/Registered", "registrations": "Status/Registrations", "updates": "Status/Updates",
    "deregistrations": "Status/Deregistrations", "expired": "Status/Expired",
    "registrations_refused": "Status/RegistrationsRefused", "notifications": "Status/Notifications",
    "refused": "Status/Refused", "read_failures": "Status/ReadFailures", "writes": "Status/Writes",
    "write_failures": "Status/WriteFailures",
}  # fmt: skip
"""The status device's counters and their metrics: registered is how many are now; refused counts payloads
(or values) that could not be read; read_failures reads or observes that got no answer or an error."""


def _address(remote: Remote) -> str:
    """A client's address as ``host:port`` (aiocoap's address, or one read back from a saved registration)."""
    return remote if isinstance(remote, str) else str(remote.hostinfo)


@dataclasses.dataclass(frozen=True, slots=True)
class _Resource:
    device: str
    path: Path
    name: str
    datatype: DataType
    unit: str | None
    writable: bool
    execute: bool


def _resources(device: Lwm2mDevice, bridge: str) -> list[_Resource]:
    out = []
    for index, res in enumerate(device.resources):
        path = parse_path(res.path)
        default_name, info = resource_info(path)
        execute = res.execute if res.execute is not None else (info is not None and info.ops == "E")
        if execute:
            datatype = DataType.Boolean
        elif res.datatype is not None:
            datatype = DataType[res.datatype]
        elif info is not None and info.datatype is not None:
            datatype = info.datatype
        else:
            raise BridgeError(
                bridge,
                device.endpoint,
                f"devices[{device.id}].resources[{index}]: {res.path} is not in the IPSO "
                "registry this server knows: give its datatype",
            )
        writable = res.writable if res.writable is not None else (info is not None and "W" in info.ops)
        unit = res.unit if res.unit is not None else (info.unit if info is not None else None)
        out.append(_Resource(device.id, path, res.name or default_name, datatype, unit, writable, execute))
    return out


@dataclasses.dataclass(slots=True)
class _Client:
    """A registered client's observations, running while its registration is current.

    Until every observed path has answered once (or failed, or ``request_timeout_s`` passed) the
    readings are held and then given as one ``Samples``: the device's DBIRTH then carries them all
    rather than nulls for the resources that answered a moment later.
    """

    registration: Registration
    remote: Remote
    task: asyncio.Task[None] | None = None
    waiting: set[Path] | None = None
    held: list[Sample] = dataclasses.field(default_factory=list)


class Lwm2mSource(RdHandler):
    """A ``Source`` for ``kind: lwm2m``: the CoAP server, the registrations, the observations.

    Args:
        config: the connector's config.
        data_dir: the hub's data directory: registrations are kept in ``data_dir/lwm2m/<name>`` so a
            restarted server observes its clients again at once; None = kept in memory only.
    """

    def __init__(self, *, config: Lwm2mBridgeConfig, data_dir: FsPath | None = None) -> None:
        self.name = config.name
        self._state = data_dir / "lwm2m" / config.name / "registrations.json" if data_dir is not None else None
        self._config = config
        self._devices = {d.endpoint: d for d in config.devices}
        self._resources = {d.endpoint: _resources(d, config.name) for d in config.devices}
        self._by_path = {ep: {r.path: r for r in rs} for ep, rs in self._resources.items()}
        self._by_name = {d.id: ({r.name: r for r in self._resources[d.endpoint]}, d.endpoint) for d in config.devices}
        self._registry = Registry(allowed=self._devices.__contains__, min_lifetime_s=config.min_lifetime_s)
        self._clients: dict[str, _Client] = {}
        self._server = CoapServer(host=config.host, port=config.port, handler=self)
        self._queue: asyncio.Queue[SourceEvent] = asyncio.Queue()
        self._warn = RateLimitedLog(log)
        self._expiry_changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._awaited: set[str] = set()  # endpoints not registered when events() began, none registered since
        self.counts = dict.fromkeys(_COUNTERS, 0)
        self.last_refusal = ""

    @property
    def port(self) -> int:
        """The UDP port clients register on (the bound one once entered)."""
        return self._server.port

    async def __aenter__(self) -> Self:
        await self._server.__aenter__()
        log.info("lwm2m %s: CoAP server on %s:%d (/rd)", self.name, self._config.host, self.port)
        if self._state is not None:
            for reg, address in load_registrations(self._state, now_ms=now_ms()):
                if reg.endpoint in self._devices:
                    self._registry.restore(reg)
                    log.info(
                        "lwm2m %s: %s still registered at /%s, at %s", self.name, reg.endpoint, reg.location, address
                    )
                    self._start_client(reg, address)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        tasks = [c.task for c in self._clients.values() if c.task is not None] + self._tasks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._clients.clear()
        self._tasks.clear()
        await self._server.__aexit__(*exc_info)

    # -- Source ---------------------------------------------------------------------------------

    def tags(self) -> Sequence[TagSpec]:
        """Every configured resource of every client, then the status device's counters."""
        out = [
            TagSpec(r.device, r.name, r.datatype, unit=r.unit, writable=r.writable or r.execute)
            for rs in self._resources.values()
            for r in rs
        ]
        out += [TagSpec(LWM2M_STATUS_DEVICE, metric, DataType.Int64) for metric in _COUNTERS.values()]
        out.append(TagSpec(LWM2M_STATUS_DEVICE, "Status/LastRefusal", DataType.String))
        return out

    async def events(self) -> AsyncIterator[SourceEvent]:
        """Readings of registered clients; ``DeviceDown`` for each client not registered, and as they leave.

        A client that has not registered since the server started is awaited (``DeviceDown.awaited``): down, no
        DBIRTH, but no warning; one that leaves (De-register, lifetime passed) is lost. An awaited client that
        has not registered within ``register_within_s`` is lost too: a WARNING, once (``_overdue``).
        """
        for device in self._config.devices:
            if device.endpoint not in self._clients:
                self._awaited.add(device.endpoint)
                yield DeviceDown(device.id, f"waiting for LwM2M client {device.endpoint} to register", awaited=True)
        self._tasks.append(asyncio.create_task(self._expiry(), name=f"lwm2m[{self.name}].expiry"))
        if self._awaited:
            self._tasks.append(asyncio.create_task(self._overdue(), name=f"lwm2m[{self.name}].overdue"))
        yield self._status(now_ms())  # the status device is read at once: the births need not wait for it
        last = self._snapshot()
        every_s = self._config.status_interval_s
        next_status = time.monotonic() + every_s
        while True:
            if time.monotonic() >= next_status:  # at most once an interval, and only when something changed
                next_status = time.monotonic() + every_s
                if (snapshot := self._snapshot()) != last:
                    last = snapshot
                    yield self._status(now_ms())
            try:
                async with asyncio.timeout(max(0.0, next_status - time.monotonic())):
                    event = await self._queue.get()
            except TimeoutError:
                continue
            yield event

    def _snapshot(self) -> tuple[object, ...]:
        return (*self.counts.values(), self.last_refusal)

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """A DCMD: PUT the value to the resource (or POST for an executable one, on true)."""
        found = self._by_name.get(device)
        res = found[0].get(name) if found is not None else None
        if found is None or res is None:
            raise BridgeError(self.name, device, f"no resource for metric {name!r}")
        endpoint = found[1]
        client = self._clients.get(endpoint)
        address = "/" + "/".join(map(str, res.path))
        if client is None:
            raise ReadError(self.name, endpoint, address, "the client is not registered")
        if res.execute:
            if value is not True:
                raise ReadError(self.name, endpoint, address, f"an execute needs true (got {value!r})")
            code, payload, fmt = Code.POST, b"", None
        else:
            fmt = FORMATS[self._config.write_format]
            try:
                payload = encode_write(res.path, value, res.datatype, fmt)
            except ValueError as exc:
                raise ReadError(self.name, endpoint, address, str(exc)) from None
            code = Code.PUT
        try:
            async with asyncio.timeout(self._config.request_timeout_s):
                answer = await self._server.request(code, client.remote, res.path, payload=payload, fmt=fmt)
        except (TimeoutError, aiocoap.error.Error) as exc:
            self.counts["write_failures"] += 1
            raise ReadError(self.name, endpoint, address, f"no answer: {exc or 'timeout'}") from None
        if not answer.ok:
            self.counts["write_failures"] += 1
            detail = answer.payload.decode(errors="replace")[:200]
            raise ReadError(self.name, endpoint, address, f"the client answered {answer.code} {detail}".rstrip())
        self.counts["writes"] += 1

    # -- registration interface (RdHandler) -----------------------------------------------------

    async def register(self, query: dict[str, str], payload: bytes, remote: Remote) -> str:
        """A Register: observations start (again) at the address it came from."""
        try:
            reg, old = self._registry.register(query, payload, now_ms=now_ms())
        except RegistrationRefused as exc:
            self._refused_registration(query.get("ep", "?"), exc)
            raise
        self.counts["registrations"] += 1
        self._awaited.discard(reg.endpoint)
        self._stop_client(reg.endpoint)
        log.info(
            "lwm2m %s: %s registered at /%s from %s (lifetime %d s, binding %s, LwM2M %s)%s",
            self.name, reg.endpoint, reg.location, remote, reg.lifetime_s, reg.binding, reg.version,
            " again: the old registration is replaced" if old is not None else "",
        )  # fmt: skip
        self._start_client(reg, remote)
        return reg.location

    async def update(self, location: str, query: dict[str, str], payload: bytes, remote: Remote) -> None:
        """An Update: a new lifetime; a new address or object list restarts the observations."""
        try:
            reg, changed = self._registry.update(location, query, payload, now_ms=now_ms())
        except RegistrationRefused as exc:
            self._refused_registration(location, exc)
            raise
        self.counts["updates"] += 1
        self._expiry_changed.set()
        client = self._clients.get(reg.endpoint)
        if client is None or changed or _address(client.remote) != _address(remote):
            self._stop_client(reg.endpoint)
            self._start_client(reg, remote)
        else:
            self._save()  # the new expiry

    async def deregister(self, location: str) -> None:
        """A De-register: the device's DDEATH."""
        try:
            reg = self._registry.deregister(location)
        except RegistrationRefused as exc:
            self._refused_registration(location, exc)
            raise
        self.counts["deregistrations"] += 1
        self._gone(reg, "de-registered")

    def _refused_registration(self, who: str, exc: RegistrationRefused) -> None:
        self.counts["registrations_refused"] += 1
        self.last_refusal = f"{who}: registration refused {exc.code}: {exc.reason}"
        self._warn.warning(f"rd:{exc.code}", "lwm2m %s: %s", self.name, self.last_refusal)

    def _gone(self, reg: Registration, why: str) -> None:
        self._stop_client(reg.endpoint)
        self._save()
        log.info("lwm2m %s: %s %s", self.name, reg.endpoint, why)
        self._queue.put_nowait(DeviceDown(self._devices[reg.endpoint].id, f"LwM2M client {reg.endpoint} {why}"))

    def _start_client(self, reg: Registration, remote: Remote) -> None:
        client = _Client(reg, remote)
        self._clients[reg.endpoint] = client
        self.counts["registered"] = len(self._clients)
        device = self._devices[reg.endpoint]
        paths = [parse_path(p) for p in device.observe] if device.observe is not None else [
            r.path for r in self._resources[reg.endpoint] if not r.execute
        ]  # fmt: skip
        client.task = asyncio.create_task(self._observe_all(client, paths), name=f"lwm2m[{self.name}].{reg.endpoint}")
        self._expiry_changed.set()
        self._save()

    def _save(self) -> None:
        if self._state is None:
            return
        rows = []
        for reg in self._registry.registrations():
            client = self._clients.get(reg.endpoint)
            if client is not None:
                rows.append((reg, _address(client.remote)))
        try:
            save_registrations(self._state, rows)
        except OSError as exc:  # the server goes on; a restart would only wait for the clients' next Update
            self._warn.warning("state", "lwm2m %s: registrations not saved to %s: %s", self.name, self._state, exc)

    def _stop_client(self, endpoint: str) -> None:
        client = self._clients.pop(endpoint, None)
        self.counts["registered"] = len(self._clients)
        if client is not None and client.task is not None:
            client.task.cancel()

    # -- observations ---------------------------------------------------------------------------

    async def _observe_all(self, client: _Client, paths: list[Path]) -> None:
        client.waiting = set(paths)
        # an executable resource has no value: its metric is false (a DCMD true executes it)
        stamp = now_ms()
        endpoint = client.registration.endpoint
        client.held = [Sample(r.name, False, stamp) for r in self._resources[endpoint] if r.execute]
        async with asyncio.TaskGroup() as tg:
            for path in paths:
                tg.create_task(
                    self._observe(client, path), name=f"lwm2m[{self.name}].{client.registration.endpoint}.{path}"
                )
            await asyncio.sleep(self._config.request_timeout_s)
            self._release(client)  # a path still silent is born null rather than holding the others

    def _deliver(self, client: _Client, path: Path, samples: list[Sample]) -> None:
        if client.waiting is None:
            if samples:
                self._queue.put_nowait(Samples(self._devices[client.registration.endpoint].id, samples))
            return
        client.held += samples
        client.waiting.discard(path)
        if not client.waiting:
            self._release(client)

    def _release(self, client: _Client) -> None:
        held, client.held, client.waiting = client.held, [], None
        if held:
            self._queue.put_nowait(Samples(self._devices[client.registration.endpoint].id, held))

    async def _observe(self, client: _Client, path: Path) -> None:
        endpoint = client.registration.endpoint
        device = self._devices[endpoint]
        accept_name = device.accept or self._config.accept
        accept = FORMATS[accept_name] if accept_name is not None else None
        address = "/" + "/".join(map(str, path))
        while True:
            try:
                async with self._server.observe(client.remote, path, accept=accept) as stream:
                    async with asyncio.timeout(self._config.request_timeout_s):
                        first = await stream.first()
                    if first.ok:
                        self._deliver(client, path, self._take(endpoint, path, first))
                        if stream.observing:
                            async for answer in stream:
                                self._deliver(client, path, self._take(endpoint, path, answer))
                    else:
                        self._deliver(client, path, [])
                        self._read_failed(endpoint, address, f"the client answered {first.code}")
            except (TimeoutError, aiocoap.error.Error) as exc:
                self._deliver(client, path, [])
                self._read_failed(endpoint, address, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            await asyncio.sleep(self._config.retry_s)  # the observation ended or failed: read it again

    def _read_failed(self, endpoint: str, address: str, reason: str) -> None:
        self.counts["read_failures"] += 1
        self._warn.warning(
            f"read:{endpoint}:{address}", "lwm2m %s: %s %s: %s; retrying", self.name, endpoint, address, reason
        )

    def _take(self, endpoint: str, path: Path, answer: CoapAnswer) -> list[Sample]:
        """One read answer or notification as samples; a broken payload refused, counted, named."""
        self.counts["notifications"] += 1
        resources = self._by_path[endpoint]
        now = now_ms()

        def type_of(p: Path) -> DataType | None:
            found = resources.get(p)
            return found.datatype if found is not None and not found.execute else None

        try:
            decoded: Decoded = decode(answer.payload, answer.fmt, path, type_of, now_ms=now)
        except ContentError as exc:
            self._refuse(endpoint, path, str(exc))
            return []
        for problem in decoded.problems:
            self._refuse(endpoint, path, problem)
        return [
            Sample(resources[r.path].name, r.value, r.timestamp_ms if r.timestamp_ms is not None else now)
            for r in decoded.readings
        ]

    def _refuse(self, endpoint: str, path: Path, reason: str) -> None:
        self.counts["refused"] += 1
        address = "/" + "/".join(map(str, path))
        self.last_refusal = f"{endpoint} {address}: {reason}"
        self._warn.warning(f"refused:{endpoint}:{address}", "lwm2m %s: refused from %s", self.name, self.last_refusal)

    # -- lifetimes ------------------------------------------------------------------------------

    async def _expiry(self) -> None:
        grace_ms = round(self._config.expiry_grace_s * 1000)
        while True:
            self._expiry_changed.clear()
            for reg in self._registry.expired(now_ms=now_ms(), grace_ms=grace_ms):
                self.counts["expired"] += 1
                self._gone(reg, f"expired: no Update within its lifetime of {reg.lifetime_s} s")
            due = self._registry.next_expiry_ms()
            wait_s = 60.0 if due is None else max(0.05, (due + grace_ms - now_ms()) / 1000 + 0.01)
            await set_within(self._expiry_changed, wait_s)

    async def _overdue(self) -> None:
        """The clients awaited at start still not registered after ``register_within_s``: lost, said once.

        Awaiting hides no loss for long: a client whose registration ran out while the server was down (so it
        was not restored), one that died, or one registering under another ``ep=`` never comes by itself.
        """
        within_s = self._config.register_within_s
        await asyncio.sleep(within_s)
        for endpoint in sorted(self._awaited):
            log.warning(
                "lwm2m %s: client %s (device %s) has not registered within %g s of the server starting: lost, or its "
                "ep= is not %s",
                self.name, endpoint, self._devices[endpoint].id, within_s, endpoint,
            )  # fmt: skip
        self._awaited.clear()

    def _status(self, stamp: int) -> Samples:
        samples = [Sample(_COUNTERS[c], v, stamp) for c, v in self.counts.items()]
        samples.append(Sample("Status/LastRefusal", self.last_refusal, stamp))
        return Samples(LWM2M_STATUS_DEVICE, samples)
