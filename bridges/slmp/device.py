"""SlmpPlc: one Mitsubishi PLC over SLMP (MC protocol 3E/4E binary, TCP or UDP) as a ``PlcDevice``."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import TypeVar

from slmp import AsyncSlmpClient, DeviceRef, SlmpError, SlmpTarget, SlmpTimeoutError
from slmp.constants import FrameType

from bridges.plc.device import GroupRead, TagProblem
from bridges.slmp.codec import decode, encode
from bridges.slmp.endcodes import BLOCK_UNSUPPORTED, describe
from bridges.slmp.plan import (
    BatchRead,
    BlockRead,
    RandomRead,
    ReadRequest,
    Slot,
    plan_reads,
    split,
    words_by_index,
)
from bridges.slmp.series import library_profile, limits_of
from bridges.source import Sample, TagSpec
from model.bridges.plc import PlcLinkSettings
from model.bridges.slmp import BIT_DEVICES, SlmpDevice, SlmpTag, parse_address
from model.envelope import Quality
from uns.clock import now_ms
from uns.errors import BridgeError, DeviceRefused, DeviceUnreachable, ReadError
from uns.sparkplug import DataType, MetricValue

__all__ = ["SlmpPlc", "datatype_of"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_DATATYPES: dict[str, DataType] = {
    "bool": DataType.Boolean,
    "int16": DataType.Int16,
    "uint16": DataType.UInt16,
    "int32": DataType.Int32,
    "uint32": DataType.UInt32,
    "float32": DataType.Float,
    "float64": DataType.Double,
    "string": DataType.String,
    "wstring": DataType.String,
}
_PROBE = ("SD", 203)
"""The CPU's operating state (RUN/STOP/PAUSE): read once on connect to prove route, frame and series."""


def datatype_of(tag: SlmpTag) -> DataType:
    """The Sparkplug datatype a tag is published as."""
    return _DATATYPES[tag.type]


_Prepared = tuple[list[DeviceRef], list[DeviceRef], list[list[tuple[str, int]]]]
"""A random read's word references, double-word references, and (result key, width) per point of each run."""


class _EndCode(Exception):
    """The PLC answered a read with a non-zero end code."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"end code 0x{code:04X}")


class SlmpPlc:
    """One PLC: its tags planned into reads per poll group, read and written with plc-comm-slmp.

    ``connect()`` opens TCP (or a UDP socket) and reads SD203 once, so a wrong series, frame,
    route or data code is refused there with the end code's meaning. A read answered with an
    address end code (0xC056 past the last device, 0x4031 outside the allocation, 0xC05B, ...)
    is read again tag by tag (and stays split), so exactly the refused addresses are reported as
    ``TagProblem``; a block read a PLC does not offer (0xC059) turns its reads into batch reads.
    """

    def __init__(self, *, bridge: str, config: SlmpDevice) -> None:
        self.id = config.id
        self.settings: PlcLinkSettings = config
        self.bridge = bridge
        self._config = config
        self._profile = library_profile(config)
        self._frame = FrameType.FRAME_4E if config.resolved_frame == "4E" else FrameType.FRAME_3E
        self.endpoint = (
            f"slmp {config.transport} {config.host}:{config.port} {config.series} {config.resolved_frame} "
            f"route {config.network}/{config.station}/0x{config.module_io:04X}/{config.multidrop}"
        )
        self._limits = limits_of(config)
        self._tags: dict[str, SlmpTag] = {tag.name: tag for tag in config.tags}
        self._slots: dict[str, Slot] = {tag.name: _slot(tag, config) for tag in config.tags}
        self._plans = self._plan()
        self._client: AsyncSlmpClient | None = None
        self._cache: dict[int, tuple[RandomRead, _Prepared]] = {}

    def _plan(self) -> dict[str, list[ReadRequest]]:
        plans: dict[str, list[ReadRequest]] = {}
        for group in self._config.poll_groups:
            slots = [self._slots[tag.name] for tag in self._config.tags if tag.poll == group]
            if slots:
                plans[group] = plan_reads(slots, self._limits)
        return plans

    @property
    def plans(self) -> Mapping[str, Sequence[ReadRequest]]:
        """The reads of each poll group, as planned (and split or turned into batch reads since)."""
        return self._plans

    def tags(self) -> Sequence[TagSpec]:
        """Every tag, in config order."""
        return [
            TagSpec(
                device=self.id,
                name=tag.name,
                datatype=datatype_of(tag),
                unit=tag.unit,
                writable=tag.writable,
                deadband=tag.deadband,
                description=tag.description or f"{tag.address} {tag.type}",
            )
            for tag in self._config.tags
        ]

    def poll_groups(self) -> Mapping[str, float]:
        """The poll groups that have tags."""
        return {group: self._config.poll_groups[group] for group in self._plans}

    async def connect(self) -> None:
        """Open the connection and read SD203 once (the probe).

        Raises:
            DeviceUnreachable: no answer, refused or reset.
            DeviceRefused: the probe's end code says the series, frame, route or data code is wrong.
        """
        await self.close()
        config = self._config
        client = AsyncSlmpClient(
            config.host,
            config.port,
            transport=config.transport,
            default_target=SlmpTarget(config.network, config.station, config.module_io, config.multidrop),
            plc_profile=self._profile,
            timeout=config.connect_timeout_s,
        )
        client.frame_type = self._frame  # plc-comm-slmp fixes 3E/4E per profile; the PLC's port decides
        self._client = client
        try:
            await self._call("connect", client.connect())
            await self._call("probe read of SD203", client.read_devices(self._ref(*_PROBE), 1, bit_unit=False))
        except _EndCode as exc:
            code = describe(exc.code)
            if code.route:
                await self.close()
                raise DeviceRefused(
                    self.bridge, self.endpoint, f"device {self.id}: probe read of SD203: {code}; check {_CHECK}"
                ) from None
        except BaseException:
            await self.close()
            raise
        client.timeout = config.timeout_s

    async def close(self) -> None:
        """Close the connection; idempotent."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def read(self, group: str) -> GroupRead:
        """Read one poll group: a sample per tag, bad where an end code refused its address.

        Raises:
            DeviceUnreachable: no answer, or the connection dropped.
            DeviceRefused: an end code that says the route or frame is wrong.
        """
        requests = self._plans.get(group, [])
        samples: list[Sample] = []
        problems: list[TagProblem] = []
        index = 0
        while index < len(requests):
            request = requests[index]
            try:
                words = await self._read(request)
            except _EndCode as exc:
                if isinstance(request, BlockRead) and exc.code == BLOCK_UNSUPPORTED:
                    log.info(
                        "slmp %s: device %s (%s) has no block read (0x0406 answered 0xC059): batch reads from now on",
                        self.bridge, self.id, self.endpoint,
                    )  # fmt: skip
                    self._limits = dataclasses.replace(self._limits, block_reads=False)
                    self._plans = self._plan()
                    return await self.read(group)
                code = describe(exc.code)
                if code.route:
                    raise DeviceRefused(
                        self.bridge, self.endpoint, f"device {self.id}: {self._label(request)}: {code}; check {_CHECK}"
                    ) from None
                slots = [slot for run in request.runs for slot in run.slots]
                if len(slots) > 1:
                    log.info(
                        "slmp %s: device %s: %s answered %s; reading its %d tags one by one from now on",
                        self.bridge, self.id, self._label(request), code, len(slots),
                    )  # fmt: skip
                    requests[index : index + 1] = split(request)
                    continue
                now = now_ms()
                problems.append(TagProblem(address=slots[0].address, tags=(slots[0].name,), reason=str(code)))
                samples.append(Sample(name=slots[0].name, value=None, timestamp_ms=now, quality=Quality.bad))
                index += 1
                continue
            samples.extend(self._decode(request, words))
            index += 1
        return GroupRead(samples=samples, problems=problems)

    async def write(self, name: str, value: MetricValue) -> None:
        """Write one tag: a bit device as a bit write (0x1401 in bit units), words as a batch write.

        Raises:
            BridgeError: unknown tag, not writable, or a value that does not fit (naming the address).
            ReadError: the PLC refused the write (the end code and its meaning).
            DeviceUnreachable: not connected, no answer, or the connection dropped.
        """
        tag = self._tags.get(name)
        if tag is None:
            raise BridgeError(self.bridge, self.endpoint, f"write: device {self.id} has no tag {name!r}")
        where = f"device {self.id}: {name} ({tag.address})"
        if not tag.writable:
            raise BridgeError(self.bridge, self.endpoint, f"{where} is not writable")
        try:
            words = encode(tag.type, value, length=tag.length)
        except ValueError as exc:
            raise BridgeError(self.bridge, self.endpoint, f"{where}: cannot write {value!r}: {exc}") from exc
        client = self._client
        if client is None:
            raise DeviceUnreachable(self.bridge, self.endpoint, f"{where}: not connected")
        device, number, _bit = parse_address(tag.address, self._config.series)
        bits = device in BIT_DEVICES
        call = client.write_devices(self._ref(device, number), [bool(w) for w in words] if bits else words,
                                    bit_unit=bits)  # fmt: skip
        try:
            await self._call(f"write of {tag.address}", call)
        except _EndCode as exc:
            raise ReadError(self.bridge, self.endpoint, tag.address, f"write refused: {describe(exc.code)}") from None
        log.info("slmp %s: wrote %r to %s", self.bridge, value, where)

    # -- requests -------------------------------------------------------------------------------

    def _ref(self, device: str, number: int) -> DeviceRef:
        return DeviceRef(device, number, self._profile)

    def _label(self, request: ReadRequest) -> str:
        octal = self._config.series in ("iQ-F", "FX5")
        kind = {RandomRead: "random read", BlockRead: "block read", BatchRead: "batch read"}[type(request)]
        return f"{kind} of {', '.join(run.label(octal) for run in request.runs)}"

    async def _read(self, request: ReadRequest) -> list[list[int]]:
        """The words of each run of ``request``, in run order."""
        client = self._client
        if client is None:
            raise DeviceUnreachable(self.bridge, self.endpoint, f"device {self.id}: not connected")
        what = self._label(request)
        if isinstance(request, RandomRead):
            words_refs, dword_refs, keys = self._prepared(request)
            result = await self._call(what, client.read_random(word_devices=words_refs, dword_devices=dword_refs))
            out: list[list[int]] = []
            for run_keys in keys:
                words: list[int] = []
                for key, width in run_keys:
                    if width == 1:
                        words.append(result.word[key])
                    else:
                        dword = result.dword[key]
                        words += [dword & 0xFFFF, dword >> 16]
                out.append(words)
            return out
        if isinstance(request, BlockRead):
            word_runs = [run for run in request.runs if run.device not in BIT_DEVICES]
            bit_runs = [run for run in request.runs if run.device in BIT_DEVICES]
            blocks = await self._call(
                what,
                client.read_block(
                    word_blocks=[(self._ref(run.device, run.head), run.words) for run in word_runs],
                    bit_blocks=[(self._ref(run.device, run.head), run.words) for run in bit_runs],
                ),
            )
            by_run = dict(zip(word_runs, (b.values for b in blocks.word_blocks), strict=True))
            by_run |= dict(zip(bit_runs, (b.values for b in blocks.bit_blocks), strict=True))
            return [list(by_run[run]) for run in request.runs]
        run = request.runs[0]
        values = await self._call(what, client.read_devices(self._ref(run.device, run.head), run.words, bit_unit=False))
        return [[int(v) for v in values]]

    def _prepared(self, request: RandomRead) -> _Prepared:
        """The device references of a random read and each run's result keys, built once per request."""
        cached = self._cache.get(id(request))
        if cached is not None and cached[0] is request:
            return cached[1]
        words: list[DeviceRef] = []
        dwords: list[DeviceRef] = []
        keys: list[list[tuple[str, int]]] = []
        for run in request.runs:
            run_keys: list[tuple[str, int]] = []
            for index, width in run.points():
                ref = self._ref(run.device, index * 16 if run.device in BIT_DEVICES else index)
                (words if width == 1 else dwords).append(ref)
                run_keys.append((str(ref), width))
            keys.append(run_keys)
        prepared = (words, dwords, keys)
        self._cache[id(request)] = (request, prepared)
        return prepared

    def _decode(self, request: ReadRequest, words: list[list[int]]) -> list[Sample]:
        by_index = words_by_index(request, words)
        now = now_ms()
        samples: list[Sample] = []
        for run in request.runs:
            for slot in run.slots:
                tag = self._tags[slot.name]
                value = decode(tag.type, [by_index[slot.device, i] for i in range(slot.index, slot.end)], slot.bit)
                samples.append(Sample(name=slot.name, value=value, timestamp_ms=now))
        return samples

    async def _call(self, what: str, call: Awaitable[_T]) -> _T:
        """Await one plc-comm-slmp call; an end code raises ``_EndCode``, anything else is a lost connection."""
        try:
            return await call
        except SlmpError as exc:
            if exc.end_code:
                raise _EndCode(exc.end_code) from None
            reason = "no answer in time" if isinstance(exc, SlmpTimeoutError) else str(exc)
            raise DeviceUnreachable(self.bridge, self.endpoint, f"device {self.id}: {what}: {reason}") from exc
        except OSError as exc:
            raise DeviceUnreachable(
                self.bridge, self.endpoint, f"device {self.id}: {what}: {type(exc).__name__}: {exc}"
            ) from exc


_CHECK = "series (Q/L vs iQ-R), frame (3E/4E), route (network/station/module_io) and the port's binary data code"


def _slot(tag: SlmpTag, config: SlmpDevice) -> Slot:
    device, number, bit = parse_address(tag.address, config.series)
    if device in BIT_DEVICES:
        return Slot(tag.name, tag.address, device, number // 16, 1, number % 16)
    return Slot(tag.name, tag.address, device, number, tag.words, bit)
