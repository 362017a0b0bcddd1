"""FinsPlc: one Omron PLC as a PlcDevice: connect and probe, read poll groups as planned, write tags.

An end code that concerns the addresses read (0x11xx parameter errors, 0x20xx/0x21xx read or write
not possible, ...) marks just those tags bad as a TagProblem: a request of several tags that fails
is read again tag by tag to find the culprits, which are planned apart from then on. An end code
that concerns the route (wrong network, node or unit, no routing tables) fails the whole device:
DeviceRefused while connecting, DeviceUnreachable while reading, each saying what to check.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from bridges.fins.client import FinsClient, FinsLink
from bridges.fins.codec import decode, encode
from bridges.fins.frame import FinsNode, FinsResponse
from bridges.fins.plan import ReadRequest, plan_reads, singles, split_response
from bridges.plc.device import GroupRead, TagProblem
from bridges.source import Sample, TagSpec
from model.bridges.fins import FinsDevice, FinsTag
from model.bridges.plc import PlcLinkSettings
from model.envelope import Quality
from uns.clock import now_ms
from uns.errors import BridgeError, DeviceRefused, DeviceUnreachable, ReadError
from uns.sparkplug import DataType, MetricValue

__all__ = ["DATATYPES", "FinsPlc", "endpoint_of"]

log = logging.getLogger(__name__)

DATATYPES: Mapping[str, DataType] = {
    "bool": DataType.Boolean,
    "int16": DataType.Int16,
    "uint16": DataType.UInt16,
    "int32": DataType.Int32,
    "uint32": DataType.UInt32,
    "float32": DataType.Float,
    "float64": DataType.Double,
    "string": DataType.String,
}
"""FINS tag type -> the Sparkplug datatype it is published as."""

# route end codes that retrying cannot fix: the config names a network, node or unit that is not there
_MISCONFIGURED = frozenset({0x0105, 0x0106, 0x0202, 0x0304, 0x0501, 0x0502, 0x0503, 0x0504})
_ROUTE_ADVICE = (
    "check network (DNA), node (DA1) and unit (DA2) in the config against the PLC's FINS node address and "
    "the routing tables of every PLC on the way"
)


def endpoint_of(device: FinsDevice) -> str:
    """``fins udp 10.0.0.7:9600 node 0.7.0``: where a PLC is, for logs and errors."""
    node = "auto" if device.node is None else str(device.node)
    return f"fins {device.transport} {device.host}:{device.port} node {device.network}.{node}.{device.unit}"


class FinsPlc:
    """One Omron PLC over FINS; a new FinsClient per connection, so close() then connect() starts clean."""

    def __init__(self, *, bridge: str, config: FinsDevice) -> None:
        self.id = config.id
        self.config = config
        self.bridge = bridge
        self.endpoint = endpoint_of(config)
        self.settings: PlcLinkSettings = config
        self.model = ""
        """The CPU model the PLC reported when last connected (empty if it does not say)."""
        self.stale_replies = 0
        self._tags = {tag.name: tag for tag in config.tags}
        self._specs = tuple(
            TagSpec(
                device=config.id,
                name=tag.name,
                datatype=DATATYPES[tag.type],
                unit=tag.unit,
                writable=tag.writable,
                deadband=tag.deadband,
                description=tag.description or f"{tag.address} ({tag.type})",
            )
            for tag in config.tags
        )
        self._isolated: set[str] = set()
        """Tags the PLC refused inside a shared request: read alone from then on, so the others stay batched."""
        self._plans = {group: self._planned(group) for group in config.poll_groups}
        self._client: FinsClient | None = None

    def _planned(self, group: str) -> list[ReadRequest]:
        members = [tag for tag in self.config.tags if tag.poll == group]
        c = self.config
        batched = plan_reads([tag for tag in members if tag.name not in self._isolated],
                             max_words=c.max_words, max_items=c.max_items, max_gap=c.max_gap)  # fmt: skip
        return batched + singles(tag for tag in members if tag.name in self._isolated)

    def tags(self) -> Sequence[TagSpec]:
        """Every tag, in config order."""
        return self._specs

    def poll_groups(self) -> Mapping[str, float]:
        """Poll group name -> interval in seconds."""
        return self.config.poll_groups

    def plan(self, group: str) -> Sequence[ReadRequest]:
        """The requests that read one poll group."""
        return self._plans[group]

    async def connect(self) -> None:
        """Open the socket and ask the CPU who it is (Controller Data Read), which checks the FINS route."""
        await self.close()
        c = self.config
        client = FinsClient(
            FinsLink(
                bridge=self.bridge,
                endpoint=self.endpoint,
                host=c.host,
                port=c.port,
                transport=c.transport,
                dest=FinsNode(c.network, c.node or 0, c.unit),
                source_network=c.source_network,
                source_node=c.source_node,
                source_port=c.source_port,
                timeout_s=c.timeout_s,
                connect_timeout_s=c.connect_timeout_s,
                retries=c.retries,
            )
        )
        await client.connect()
        try:
            probe = await client.controller_data()
            self._check_route(probe, "connecting", connecting=True)
        except BaseException:
            await client.close()
            raise
        # 0x04xx: the CPU does not know Controller Data Read (some NX): it answered, that is enough
        self.model = probe.data[:20].split(b"\x00", 1)[0].decode("ascii", "replace").strip() if probe.end.ok else ""
        log.debug("%s: connected%s", self.endpoint, f" to {self.model}" if self.model else "")
        self._client = client

    def _check_route(self, response: FinsResponse, doing: str, *, connecting: bool = False) -> None:
        end = response.end
        if not end.route:
            return
        # a relay node that reports an error appends its own network and node address (W342)
        where = (
            f" at network {response.data[0]} node {response.data[1]}"
            if end.relay_error and len(response.data) >= 2
            else ""
        )
        reason = f"{doing}: {'a relay' if end.relay_error else 'the PLC'} answered {end}{where}: {_ROUTE_ADVICE}"
        if end.code in _MISCONFIGURED and connecting:
            raise DeviceRefused(self.bridge, self.endpoint, reason)
        raise DeviceUnreachable(self.bridge, self.endpoint, reason)

    def _connected(self) -> FinsClient:
        if self._client is None:
            raise DeviceUnreachable(self.bridge, self.endpoint, "not connected")
        return self._client

    async def read(self, group: str) -> GroupRead:
        """Read one poll group: a sample per tag, bad with a TagProblem where the PLC refused an address."""
        values: dict[str, MetricValue] = {}
        problems: list[TagProblem] = []
        for request in self._plans[group]:
            await self._read_request(request, values, problems, split_on_error=True)
        refused = {name for problem in problems for name in problem.tags} - self._isolated
        if refused:
            # the requests they shared failed for all: plan them apart so the next polls cost no retries
            self._isolated |= refused
            self._plans[group] = self._planned(group)
            log.info("%s: read alone from now on, refused by the PLC: %s", self.endpoint, ", ".join(sorted(refused)))
        now = now_ms()
        samples = [
            Sample(tag.name, values[tag.name], now) if tag.name in values else Sample(tag.name, None, now, Quality.bad)
            for tag in self.config.tags
            if tag.poll == group
        ]
        return GroupRead(samples=samples, problems=problems)

    async def _read_request(
        self,
        request: ReadRequest,
        values: dict[str, MetricValue],
        problems: list[TagProblem],
        *,
        split_on_error: bool,
    ) -> None:
        client = self._connected()
        if request.multiple:
            response = await client.read_multiple(request.items)
        else:
            (block,) = request.blocks
            response = await client.read_area(block.start, block.count)
        self.stale_replies = client.stale_replies
        self._check_route(response, f"reading {request}")
        if response.end.ok:
            try:
                data = split_response(request, response.data)
            except ValueError as exc:
                problems.append(TagProblem(str(request), [t.name for t in request.tags], f"bad response: {exc}"))
                return
            for block, words in data.items():
                for tag in block.tags:
                    values[tag.name] = self._decode(tag, block.words_of(words, tag))
            return
        if split_on_error and len(request.tags) > 1:
            for single in singles(request.tags):
                await self._read_request(single, values, problems, split_on_error=False)
            return
        problems.extend(TagProblem(tag.address, [tag.name], str(response.end)) for tag in request.tags)

    @staticmethod
    def _decode(tag: FinsTag, words: bytes) -> MetricValue:
        return decode(words, tag.type, bit=tag.location.bit, byte_order=tag.byte_order)

    async def write(self, name: str, value: MetricValue) -> None:
        """Write one tag: a bit address with bit access (its word's other bits untouched), else its words."""
        tag = self._tags.get(name)
        if tag is None:
            raise BridgeError(self.bridge, self.endpoint, f"device {self.id} has no tag {name!r}")
        if not tag.writable:
            raise BridgeError(
                self.bridge, self.endpoint, f"device {self.id}: tag {name} ({tag.address}) is not writable"
            )
        where = tag.location
        try:
            if not isinstance(value, bool | int | float | str):
                raise ValueError(f"{value!r} is not a value for a {tag.type}")
            if where.bit is not None:
                data, count, bits = (b"\x01" if value else b"\x00"), 1, True
            else:
                data, count, bits = (
                    encode(value, tag.type, length=tag.length, byte_order=tag.byte_order),
                    tag.words,
                    False,
                )
        except (ValueError, TypeError) as exc:
            raise BridgeError(
                self.bridge, self.endpoint, f"device {self.id}: tag {name} ({tag.address}): {exc}"
            ) from exc
        response = await self._connected().write_area(where, count, data, bits=bits)
        self._check_route(response, f"writing {tag.address}")
        if not response.end.ok:
            raise ReadError(
                self.bridge, self.endpoint, tag.address, f"the PLC refused the write of {name}: {response.end}"
            )

    async def close(self) -> None:
        """Close the connection; idempotent."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()
