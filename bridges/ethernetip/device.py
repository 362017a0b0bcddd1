"""EnipDevice: one Logix controller as a PlcDevice: batched reads, per-tag CIP errors, typed writes."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from bridges.ethernetip.cip import (
    GET_ATTRIBUTES_ALL,
    IDENTITY_CLASS,
    MULTIPLE_SERVICE,
    CipDecodeError,
    Reply,
    decode_multiple,
    decode_reply,
    encode_multiple,
    encode_request,
    logical_path,
    port_path,
)
from bridges.ethernetip.client import CipClient, CipLost, CipRefused
from bridges.ethernetip.encap import MESSAGE_ROUTER
from bridges.ethernetip.symbols import SymbolTable, load_symbols
from bridges.ethernetip.values import ValueMismatch, datatype_of, decode_value, encode_write, read_request, read_size
from bridges.plc.device import GroupRead, TagProblem
from bridges.source import Sample, TagSpec
from model.bridges.ethernetip import EthernetIpDevice, EthernetIpTag, TagAddress
from model.bridges.plc import PlcLinkSettings
from model.envelope import Quality
from uns.clock import now_ms
from uns.errors import BridgeError, DeviceRefused, DeviceUnreachable, ReadError
from uns.sparkplug import MetricValue

__all__ = ["EnipDevice", "endpoint_of"]

log = logging.getLogger(__name__)

_MSP_OVERHEAD = 2 + len(MESSAGE_ROUTER) + 2
"""Multiple Service Packet: service, path size, path to the Message Router, count."""
_REPLY_OVERHEAD = 4 + 2
"""Its reply: header and count."""
_SAFETY = 8
"""Bytes kept free of a message: the connected sequence count and slack for the routing wrapper."""
_MICRO800 = "2080-"
"""Catalog prefix of Micro800 controllers (Micro820/850/870)."""


def endpoint_of(device: EthernetIpDevice) -> str:
    """``ethernetip 10.0.0.5:44818 route [1, 0]``: where a controller is, for logs and errors."""
    hops = " ".join(f"[{port}, {link}]" for port, link in device.hops) or "none (Micro800)"
    return f"ethernetip {device.host}:{device.port} route {hops}"


@dataclasses.dataclass(frozen=True, slots=True)
class _Read:
    tag: EthernetIpTag
    address: TagAddress
    request: bytes
    reply_size: int


def _product_name(identity: bytes) -> str:
    """The product name of an Identity object's Get Attributes All reply (after 14 bytes of fixed attributes)."""
    if len(identity) < 15:
        return ""
    return identity[15 : 15 + identity[14]].decode("latin-1", errors="replace")


class EnipDevice:
    """A Logix controller (ControlLogix, CompactLogix, Micro800) read and written by tag name.

    A poll group's reads are packed into Multiple Service Packets sized to the connection the
    controller granted (4002 bytes with Large Forward Open, 504 otherwise); a tag whose reply would
    not fit one message is read with Read Tag Fragmented. A CIP error on one tag marks that tag bad
    with a ``TagProblem`` naming the status; the others are read.
    """

    def __init__(self, *, bridge: str, config: EthernetIpDevice, data_dir: Path | None = None) -> None:
        self.id = config.id
        self.endpoint = endpoint_of(config)
        self.settings: PlcLinkSettings = config
        self._bridge = bridge
        self._config = config
        self._tags = {tag.name: tag for tag in config.tags}
        self._addresses = {tag.name: tag.parsed for tag in config.tags}
        self._cache_file = (data_dir / f"{config.id}.tags.json") if data_dir and config.tag_cache else None
        self._client: CipClient | None = None
        self._batch = config.family != "micro800"
        self._symbols: SymbolTable | None = None
        self._declared_problems: dict[str, str] = {}
        self._lists_tags = True
        self.product = ""
        """The controller's product name from its identity (``1756-L83E/B``), once connected."""

    @property
    def symbols(self) -> SymbolTable | None:
        """The controller's tag and UDT list, once uploaded (None without ``tag_cache``)."""
        return self._symbols

    @property
    def mode(self) -> str:
        """How the session talks: ``large connected``, ``connected``, ``unconnected`` or ``closed``."""
        return self._client.mode if self._client else "closed"

    def tags(self) -> Sequence[TagSpec]:
        """One metric per configured tag, in config order."""
        return [
            TagSpec(
                device=self.id,
                name=tag.name,
                datatype=datatype_of(tag.type, self._addresses[tag.name]),
                unit=tag.unit,
                writable=tag.writable,
                deadband=tag.deadband,
                description=tag.description or f"{tag.address} {tag.type}",
            )
            for tag in self._config.tags
        ]

    def poll_groups(self) -> Mapping[str, float]:
        """The device's poll groups."""
        return self._config.poll_groups

    def _lost(self, exc: Exception) -> DeviceUnreachable:
        return DeviceUnreachable(self._bridge, self.endpoint, str(exc))

    async def connect(self) -> None:
        """Session, connection and an identity read through the route (so a wrong slot is refused here)."""
        await self.close()
        config = self._config
        try:
            client = await self._open()
            if config.tag_cache and self._lists_tags:
                try:
                    self._symbols = await load_symbols(client, self._cache_file, endpoint=self.endpoint)
                except (CipLost, CipRefused) as exc:
                    # some servers end the session on the symbol service instead of answering 0x08:
                    # go on without a tag list rather than failing every connect the same way
                    log.info(
                        "%s: tag list upload ended the session (%s); trusting the configured types", self.endpoint, exc
                    )
                    self._lists_tags = False
                    client = await self._open()
                self._declared_problems = self._symbols.check(config.tags) if self._symbols else {}
        except CipRefused as exc:
            await self.close()
            raise DeviceRefused(self._bridge, self.endpoint, str(exc)) from exc
        except CipLost as exc:
            await self.close()
            raise self._lost(exc) from exc
        log.info(
            "%s: %s, %s (%d bytes per message)", self.endpoint, self.product or "?", client.mode, client.connection_size
        )

    async def _open(self) -> CipClient:
        await self.close()
        config = self._config
        client = CipClient(
            host=config.host,
            port=config.port,
            route=port_path(config.hops),
            connected=config.connected,
            connection_size=config.connection_size,
            timeout_s=config.timeout_s,
            idle_s=4 * max(config.poll_groups.values()),  # a slow poll group must not let the connection lapse
        )
        self._client = client
        await client.open()
        identity = await client.request(encode_request(GET_ATTRIBUTES_ALL, logical_path(IDENTITY_CLASS, 1)))
        if identity.status in (0x01, 0x04, 0x05) and config.hops:
            raise CipRefused(
                "identity read", identity.status, identity.extended, "check 'route': nothing answers at its end"
            )
        self.product = _product_name(identity.data) if identity.status == 0 else ""
        if self.product.startswith(_MICRO800) and self._batch:
            # a Micro800 configured as family logix: it takes no Multiple Service Packet
            log.info("%s: %s is a Micro800: reading tag by tag (set family: micro800)", self.endpoint, self.product)
            self._batch = False
        return client

    async def close(self) -> None:
        """Forward Close, unregister, close the socket; idempotent."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _client_or_raise(self) -> CipClient:
        if self._client is None:
            raise DeviceUnreachable(self._bridge, self.endpoint, "not connected")
        return self._client

    async def read(self, group: str) -> GroupRead:
        """Read one poll group in as few messages as fit; per-tag CIP errors become ``TagProblem``s."""
        client = self._client_or_raise()
        values: dict[str, MetricValue] = {}
        problems: list[TagProblem] = []
        reads: list[_Read] = []
        for tag in self._config.tags:
            if tag.poll != group:
                continue
            address = self._addresses[tag.name]
            if tag.name in self._declared_problems:
                problems.append(TagProblem(tag.address, (tag.name,), self._declared_problems[tag.name]))
                continue
            reads.append(_Read(tag, address, read_request(address), read_size(tag.type, address)))
        try:
            for batch in self._batches(reads, client.connection_size - _SAFETY):
                await self._read_batch(client, batch, values, problems)
        except CipLost as exc:
            raise self._lost(exc) from exc
        except CipRefused as exc:
            raise DeviceUnreachable(self._bridge, self.endpoint, str(exc)) from exc
        now = now_ms()
        samples = [
            Sample(name, values.get(name), now, Quality.good if name in values else Quality.bad)
            for name in (tag.name for tag in self._config.tags if tag.poll == group)
        ]
        return GroupRead(samples=samples, problems=problems)

    def _batches(self, reads: Sequence[_Read], budget: int) -> list[list[_Read]]:
        batches: list[list[_Read]] = []
        current: list[_Read] = []
        request_bytes, reply_bytes = _MSP_OVERHEAD, _REPLY_OVERHEAD
        for read in reads:
            need_request, need_reply = len(read.request) + 2, 4 + read.reply_size + 2
            too_big = request_bytes + need_request > budget or reply_bytes + need_reply > budget
            if current and (too_big or not self._batch):
                batches.append(current)
                current, request_bytes, reply_bytes = [], _MSP_OVERHEAD, _REPLY_OVERHEAD
            current.append(read)
            request_bytes += need_request
            reply_bytes += need_reply
        if current:
            batches.append(current)
        return batches

    async def _read_batch(
        self, client: CipClient, batch: list[_Read], values: dict[str, MetricValue], problems: list[TagProblem]
    ) -> None:
        budget = client.connection_size - _SAFETY
        if len(batch) == 1 or not self._batch:
            for read in batch:
                reply = await self._read_one(client, read, budget)
                self._take(read, reply, values, problems)
            return
        outer = await client.request(
            encode_request(MULTIPLE_SERVICE, MESSAGE_ROUTER, encode_multiple([r.request for r in batch]))
        )
        if outer.status == 0x08:
            log.info("%s: no Multiple Service Packet support; reading tag by tag", self.endpoint)
            self._batch = False
            await self._read_batch(client, batch, values, problems)
            return
        if outer.status not in (0x00, 0x1E):
            for read in batch:
                problems.append(TagProblem(read.tag.address, (read.tag.name,), outer.describe()))
            return
        try:
            replies = [decode_reply(part) for part in decode_multiple(outer.data)]
        except CipDecodeError as exc:
            raise CipLost(f"Multiple Service Packet reply: {exc}") from exc
        if len(replies) != len(batch):
            raise CipLost(f"Multiple Service Packet: {len(replies)} replies for {len(batch)} requests")
        for read, reply in zip(batch, replies, strict=True):
            if reply.status == 0x06:  # did not fit after all: fetch it in fragments
                reply = await self._read_fragmented(client, read)
            self._take(read, reply, values, problems)

    async def _read_one(self, client: CipClient, read: _Read, budget: int) -> Reply:
        if read.reply_size + 4 > budget:
            return await self._read_fragmented(client, read)
        reply = await client.request(read.request)
        return await self._read_fragmented(client, read) if reply.status == 0x06 else reply

    async def _read_fragmented(self, client: CipClient, read: _Read) -> Reply:
        """Read Tag Fragmented until the controller says it sent everything."""
        data, offset = b"", 0
        while True:
            reply = await client.request(read_request(read.address, offset=offset))
            if reply.status not in (0x00, 0x06):
                return reply
            if len(reply.data) < 2:
                raise CipLost(f"fragmented read of {read.tag.address}: reply without type")
            chunk = reply.data[2:] if data else reply.data
            data += chunk
            offset += len(reply.data) - 2
            if reply.status == 0x00:
                return Reply(reply.service, 0, (), data)
            if not chunk or offset > 16 * 1024 * 1024:
                raise CipLost(f"fragmented read of {read.tag.address} makes no progress")

    def _take(self, read: _Read, reply: Reply, values: dict[str, MetricValue], problems: list[TagProblem]) -> None:
        if reply.status != 0:
            problems.append(TagProblem(read.tag.address, (read.tag.name,), reply.describe()))
            if reply.status in (0x04, 0x05) and self._symbols is not None:
                self._symbols.stale = True  # the program may have changed: upload the list again next connect
            return
        try:
            values[read.tag.name] = decode_value(read.tag.type, read.address, reply.data)
        except ValueMismatch as exc:
            problems.append(TagProblem(read.tag.address, (read.tag.name,), str(exc)))
            if self._symbols is not None:
                self._symbols.stale = True

    async def write(self, name: str, value: MetricValue) -> None:
        """Write one tag as its declared Logix type."""
        tag = self._tags.get(name)
        if tag is None:
            raise BridgeError(self._bridge, self.endpoint, f"device {self.id}: no tag {name!r}")
        if not tag.writable:
            raise BridgeError(self._bridge, self.endpoint, f"device {self.id}: tag {name} ({tag.address}) is read only")
        handle = self._symbols.string_handle(tag) if self._symbols is not None else None
        try:
            request = encode_write(tag.type, self._addresses[name], value, **({"handle": handle} if handle else {}))
        except ValueError as exc:
            raise BridgeError(
                self._bridge, self.endpoint, f"device {self.id}: tag {name} ({tag.address}, {tag.type}): {exc}"
            ) from exc
        client = self._client_or_raise()
        try:
            reply = await client.request(request)
        except (CipLost, CipRefused) as exc:
            raise self._lost(exc) from exc
        if reply.status != 0:
            raise ReadError(self._bridge, self.endpoint, tag.address, f"write refused: {reply.describe()}")
