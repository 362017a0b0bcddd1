"""S7Plc: one S7 CPU (classic S7 / PUT/GET) as a PlcDevice: planned multi-variable reads, bit-exact writes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from bridges.plc import GroupRead, TagProblem
from bridges.s7.codec import S7CodecError, decode, encode
from bridges.s7.link import LinkDown, LinkRefused, S7Link
from bridges.s7.pdu import ItemResult, S7HeaderError, header_error_text, item_error_text
from bridges.s7.plan import PlannedTag, ReadPlan, plan_reads
from bridges.source import Sample, TagSpec
from model.bridges.plc import PlcLinkSettings
from model.bridges.s7 import S7Device, S7Tag
from model.bridges.s7_address import S7Address, S7Area
from model.envelope import Quality
from uns.clock import now_ms
from uns.errors import BridgeError, DeviceRefused, DeviceUnreachable, ReadError
from uns.sparkplug import DataType, MetricValue

__all__ = ["HINTS", "S7Plc", "cpu_mode"]

log = logging.getLogger(__name__)

HINTS: dict[int, str] = {
    0x03: "check 'Permit access with PUT/GET' and that the block is not know-how or write protected",
    0x05: "check the DB is that long and, on an S7-1200/1500, that the DB's 'Optimized block access' is off",
    0x0A: "check the DB exists in the CPU (its number) and is downloaded",
    0x06: "the CPU cannot read that area with this transport size",
}
"""What to check per item return code, appended to a TagProblem's reason."""

_PUT_GET = (
    "the CPU refuses PUT/GET reads: in TIA Portal open the CPU's properties > Protection & Security > "
    "Connection mechanisms, tick 'Permit access with PUT/GET communication from remote partner', and download"
)
_MODES = {0x8: "RUN", 0x9: "RUN-R", 0xA: "HOLD", 0x5: "STARTUP", 0x6: "STARTUP", 0x7: "STARTUP"}


def cpu_mode(records: bytes | None) -> str | None:
    """The operating mode from SZL 0x0424's first record (None when unknown)."""
    if records is None or len(records) < 4:
        return None
    return _MODES.get(records[3] & 0x0F, "STOP")


class S7Plc:
    """A connection to one S7 CPU with its tags; PlcSource serialises calls, so no locking here."""

    def __init__(self, *, bridge: str, config: S7Device, tags: Sequence[S7Tag]) -> None:
        self.id = config.id
        self.endpoint = config.endpoint
        self.settings: PlcLinkSettings = config
        self._bridge = bridge
        self._config = config
        self._tags = {tag.name: tag for tag in tags}
        self._addresses = {tag.name: tag.parsed() for tag in tags}
        self._specs = [
            TagSpec(
                device=config.id,
                name=tag.name,
                datatype=DataType[self._addresses[tag.name].type.datatype],
                unit=tag.unit,
                writable=tag.writable,
                deadband=tag.deadband,
                description=tag.description or self._addresses[tag.name].text,
            )
            for tag in tags
        ]
        self._groups: dict[str, list[PlannedTag]] = {group: [] for group in config.poll_groups}
        for tag in tags:
            self._groups[tag.poll].append(PlannedTag(tag.name, self._addresses[tag.name]))
        self._isolated: dict[str, set[str]] = {group: set() for group in self._groups}
        self._plans: dict[str, ReadPlan] = {}
        self._link: S7Link | None = None
        self.pdu_size = 0
        """The PDU size negotiated on the last connect."""

    def tags(self) -> Sequence[TagSpec]:
        """Every tag of this PLC."""
        return self._specs

    def poll_groups(self) -> Mapping[str, float]:
        """Poll group name -> interval."""
        return self._config.poll_groups

    def plan(self, group: str) -> ReadPlan:
        """The read plan of a group for the negotiated PDU size (after connect)."""
        plan = self._plans.get(group)
        if plan is None:
            plan = plan_reads(
                self._groups[group],
                pdu_size=self.pdu_size or self._config.pdu_size,
                max_items=self._config.max_items,
                max_gap=self._config.max_gap,
                isolated=self._isolated[group],
            )
            self._plans[group] = plan
        return plan

    async def connect(self) -> None:
        """ISO connection, setup communication, then a check that the CPU serves reads (PUT/GET, mode)."""
        local, remote = self._config.tsaps
        link = S7Link(
            host=self._config.host,
            port=self._config.port,
            local_tsap=local,
            remote_tsap=remote,
            pdu_size=self._config.pdu_size,
            timeout_s=self._config.timeout_s,
            connect_timeout_s=self._config.connect_timeout_s,
        )
        try:
            await link.open()
            self.pdu_size = link.pdu_size
            self._plans.clear()
            await self._check(link)
        except LinkDown as exc:
            await link.close()
            raise DeviceUnreachable(self._bridge, self.endpoint, f"device {self.id}: {exc}") from None
        except LinkRefused as exc:
            await link.close()
            raise DeviceRefused(self._bridge, self.endpoint, f"device {self.id}: {exc}") from None
        except BaseException:
            await link.close()
            raise
        self._link = link

    async def _check(self, link: S7Link) -> None:
        """Refuse (fail fast) a CPU that does not serve PUT/GET, or one in STOP when require_run says so."""
        if self._config.require_run:
            mode = cpu_mode(await link.read_szl(0x0424))
            if mode is not None and mode != "RUN":
                raise LinkRefused(f"the CPU is in {mode} (require_run is set): switch it to RUN")
        first = next((plan.requests[0] for group in self._groups if (plan := self.plan(group)).requests), None)
        if first is None:
            return
        try:
            await link.read(first.chunks[:1])
        except S7HeaderError as exc:
            reason = _PUT_GET if exc.code == 0x8104 else f"reads are refused ({exc})"
            raise LinkRefused(f"{header_error_text(exc.code)}: {reason}") from None

    async def read(self, group: str) -> GroupRead:
        """Read one poll group; a range that fails with several tags in it is split and read again once."""
        samples, problems, failed_merged = await self._read_plan(group, self.plan(group))
        if failed_merged:
            self._isolated[group].update(failed_merged)
            self._plans.pop(group, None)
            samples, problems, _ = await self._read_plan(group, self.plan(group))
        return GroupRead(samples=samples, problems=problems)

    async def _read_plan(self, group: str, plan: ReadPlan) -> tuple[list[Sample], list[TagProblem], set[str]]:
        link = self._require_link()
        buffers = [bytearray(span.size) for span in plan.ranges]
        failures: dict[int, str] = {}
        for request in plan.requests:
            try:
                results = await link.read(request.chunks)
            except LinkDown as exc:
                raise DeviceUnreachable(self._bridge, self.endpoint, f"device {self.id}: {exc}") from None
            except S7HeaderError as exc:
                results = [ItemResult(0, b"")] * len(request.chunks)
                refused = header_error_text(exc.code)
                for chunk in request.chunks:
                    failures.setdefault(chunk.range_index, refused)
                continue
            for chunk, result in zip(request.chunks, results, strict=True):
                span = plan.ranges[chunk.range_index]
                if not result.ok:
                    failures.setdefault(chunk.range_index, _item_reason(result.code))
                    continue
                if len(result.data) != chunk.size:
                    failures.setdefault(
                        chunk.range_index, f"the PLC returned {len(result.data)} bytes for {chunk.size} asked"
                    )
                    continue
                at = chunk.offset * span.unit_bytes
                buffers[chunk.range_index][at : at + chunk.size] = result.data
        stamp = now_ms()
        samples: list[Sample] = []
        problems: list[TagProblem] = []
        failed_merged: set[str] = set()
        for index, span in enumerate(plan.ranges):
            reason = failures.get(index)
            if reason is not None and len(span.tags) > 1:
                failed_merged.update(tag.name for tag in span.tags)
            for tag in span.tags:
                address = tag.address
                if reason is None:
                    at = (address.start - span.start) * span.unit_bytes
                    try:
                        value = decode(address, bytes(buffers[index][at : at + address.size]))
                    except S7CodecError as exc:
                        problems.append(TagProblem(address=address.text, tags=(tag.name,), reason=str(exc)))
                    else:
                        samples.append(Sample(tag.name, value, stamp))
                        continue
                else:
                    problems.append(TagProblem(address=address.text, tags=(tag.name,), reason=reason))
                samples.append(Sample(tag.name, None, stamp, Quality.bad))
        return samples, problems, failed_merged

    async def write(self, name: str, value: MetricValue) -> None:
        """Write one tag: a BOOL as a bit write (its neighbours untouched), anything else as its bytes."""
        tag = self._tags.get(name)
        if tag is None:
            raise BridgeError(self._bridge, self.endpoint, f"device {self.id}: no tag {name!r}")
        address = self._addresses[name]
        if not tag.writable:
            raise BridgeError(self._bridge, self.endpoint, f"device {self.id}: tag {name} ({address}) is not writable")
        try:
            offset, data = encode(address, value)
        except S7CodecError as exc:
            raise BridgeError(self._bridge, self.endpoint, f"device {self.id}: tag {name}: {exc}") from None
        link = self._require_link()
        try:
            code = await link.write(
                address.area, address.db, address.start + offset, data, address.bit if address.bit is not None else None
            )
        except LinkDown as exc:
            raise DeviceUnreachable(self._bridge, self.endpoint, f"device {self.id}: {exc}") from None
        except S7HeaderError as exc:
            raise ReadError(self._bridge, self.endpoint, _where(address), f"write refused: {exc}") from None
        if code != 0xFF:
            raise ReadError(self._bridge, self.endpoint, _where(address), f"write refused: {_item_reason(code)}")

    async def close(self) -> None:
        """Close the connection; idempotent."""
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    def _require_link(self) -> S7Link:
        if self._link is None:
            raise DeviceUnreachable(self._bridge, self.endpoint, f"device {self.id}: not connected")
        return self._link


def _item_reason(code: int) -> str:
    hint = HINTS.get(code)
    return f"{item_error_text(code)}: {hint}" if hint else item_error_text(code)


def _where(address: S7Address) -> str:
    area = "" if address.area == S7Area.DB else f" ({address.area.name})"
    return f"{address.text}{area}"
