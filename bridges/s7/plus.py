"""EXPERIMENTAL: S7CommPlus symbolic access to optimized DBs of S7-1200/1500, with python ``s7commplus`` 0.3.

``s7commplus``'s symbolic API (browse, read_tags, write_tag) exists only on its synchronous client,
so each call runs in a worker thread; PlcSource never has two calls of one device in flight. Tags
are read by symbol (``"Motor".Speed`` as the library's browse names it), so their types must be
in the config: ``browse_symbols`` connects once and turns the PLC's symbol table into such tags
(``python -m bridges.s7.plus HOST [PORT]`` prints them as YAML). Not supported here: TLS (V2/V3
sessions that need it), passwords (legitimation), subscriptions, arrays as one metric.
"""

from __future__ import annotations

import asyncio
import datetime
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from s7commplus import Client, SymbolCatalog, SymbolicTag
from s7commplus.error import S7CertificateError, S7ConnectionError, S7TimeoutError, S7TlsHandshakeError

from bridges.plc import GroupRead, TagProblem
from bridges.source import Sample, TagSpec
from model.bridges.plc import PlcLinkSettings
from model.bridges.s7 import S7Device, S7Tag
from model.bridges.s7_address import S7_TYPES
from model.envelope import Quality
from uns.clock import now_ms
from uns.errors import BridgeError, DeviceRefused, DeviceUnreachable, ReadError
from uns.sparkplug import DataType, MetricValue

__all__ = ["S7PlusPlc", "browse_symbols", "s7_type_of"]

_SOFT_TYPES = {"DATE": "UINT", "TIME_OF_DAY": "UDINT", "LTIME": "LINT", "LDT": "ULINT", "WCHAR": "WSTRING",
               "USINT": "USINT", "DT": "DATE_AND_TIME"}  # fmt: skip
_EPOCH = datetime.datetime(1970, 1, 1)  # the PLC's clock has no zone: read as UTC, as classic S7 DATE_AND_TIME


def s7_type_of(tag: SymbolicTag) -> str | None:
    """Our S7 type name for a browsed symbol (None: a type we do not publish, e.g. a whole array)."""
    name = tag.softdatatype.name
    name = _SOFT_TYPES.get(name, name)
    return name if name in S7_TYPES and name not in ("S5TIME", "COUNTER") else None


def _metric(value: Any) -> MetricValue:
    """A decoded s7commplus value as a Sparkplug value (dates and times as milliseconds)."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.datetime):
        return (value.replace(tzinfo=None) - _EPOCH) // datetime.timedelta(milliseconds=1)
    if isinstance(value, datetime.timedelta):
        return value // datetime.timedelta(milliseconds=1)
    if isinstance(value, datetime.date):
        return (value - _EPOCH.date()).days
    if isinstance(value, datetime.time):
        return ((value.hour * 60 + value.minute) * 60 + value.second) * 1000 + value.microsecond // 1000
    raise ValueError(f"cannot publish a {type(value).__name__}")


class S7PlusPlc:
    """EXPERIMENTAL: one S7-1200/1500 read by symbol over S7CommPlus."""

    def __init__(self, *, bridge: str, config: S7Device) -> None:
        self.id = config.id
        self.endpoint = config.endpoint
        self.settings: PlcLinkSettings = config
        self._bridge = bridge
        self._config = config
        self._tags = {tag.name: tag for tag in config.tags}
        self._specs = [
            TagSpec(
                device=config.id,
                name=tag.name,
                datatype=DataType[S7_TYPES[tag.type or "BOOL"].datatype],
                unit=tag.unit,
                writable=tag.writable,
                deadband=tag.deadband,
                description=tag.description or (tag.symbol or ""),
            )
            for tag in config.tags
        ]
        self._client: Client | None = None
        self._catalog: SymbolCatalog | None = None

    def tags(self) -> Sequence[TagSpec]:
        """Every tag of this PLC."""
        return self._specs

    def poll_groups(self) -> Mapping[str, float]:
        """Poll group name -> interval."""
        return self._config.poll_groups

    async def connect(self) -> None:
        """Open the S7CommPlus session and browse the symbol table (the tags resolve against it)."""
        client = Client()
        try:
            async with asyncio.timeout(self._config.connect_timeout_s):
                await asyncio.to_thread(client.connect, self._config.host, self._config.port)
                self._catalog = await asyncio.to_thread(client.refresh_tag_catalog)
        except (S7CertificateError, S7TlsHandshakeError) as exc:
            await asyncio.to_thread(client.disconnect)
            raise DeviceRefused(self._bridge, self.endpoint, f"device {self.id}: TLS refused ({exc}): "
                                "TLS sessions are not supported by this experimental driver") from None  # fmt: skip
        except (OSError, TimeoutError, S7ConnectionError, S7TimeoutError) as exc:
            await asyncio.to_thread(client.disconnect)
            raise DeviceUnreachable(self._bridge, self.endpoint, f"device {self.id}: {exc}") from None
        except Exception as exc:  # the library's protocol errors: the PLC answered and refused
            await asyncio.to_thread(client.disconnect)
            raise DeviceRefused(
                self._bridge,
                self.endpoint,
                f"device {self.id}: S7CommPlus session refused ({exc}): check it is an S7-1200 (FW 4+) or "
                "S7-1500 without a password or TLS requirement (not supported by this experimental driver)",
            ) from None
        self._client = client

    async def read(self, group: str) -> GroupRead:
        """Read the group's symbols in one batch; an unknown symbol or failed item marks that tag bad."""
        client = self._require_client()
        tags = [tag for tag in self._tags.values() if tag.poll == group]
        started = now_ms()
        samples: list[Sample] = []
        problems: list[TagProblem] = []
        catalog = self._catalog  # browsed at connect (a changed program: reconnect)
        known = [tag for tag in tags if catalog is not None and _has(catalog, tag.symbol or "")]
        for tag in tags:
            if tag not in known:
                count = len(catalog) if catalog is not None else 0
                problems.append(
                    TagProblem(tag.symbol or "", (tag.name,), f"not in the PLC's symbol table ({count} symbols)")
                )
                samples.append(Sample(tag.name, None, started, Quality.bad))
        if not known:
            return GroupRead(samples=samples, problems=problems)
        try:
            async with asyncio.timeout(self._config.timeout_s):
                results = await asyncio.to_thread(client.read_tags, [tag.symbol or "" for tag in known])
        except (OSError, TimeoutError, S7ConnectionError, S7TimeoutError) as exc:
            raise DeviceUnreachable(self._bridge, self.endpoint, f"device {self.id}: {exc}") from None
        stamp = now_ms()
        for tag, result in zip(known, results, strict=True):
            try:
                if result.error is not None or result.value is None:
                    raise ValueError(str(result.error or "no value"))
                value = _metric(result.tag.decode_value(result.value))
            except ValueError as exc:
                problems.append(TagProblem(tag.symbol or "", (tag.name,), str(exc)))
                samples.append(Sample(tag.name, None, stamp, Quality.bad))
            else:
                samples.append(Sample(tag.name, value, stamp))
        return GroupRead(samples=samples, problems=problems)

    async def write(self, name: str, value: MetricValue) -> None:
        """Write one symbol."""
        tag = self._tags.get(name)
        if tag is None or not tag.writable:
            raise BridgeError(self._bridge, self.endpoint, f"device {self.id}: tag {name!r} is unknown or not writable")
        client = self._require_client()
        try:
            symbolic = client.resolve_tag(tag.symbol or "")
            data = symbolic.encode_value(value)
        except (KeyError, TypeError, ValueError) as exc:
            raise BridgeError(
                self._bridge, self.endpoint, f"device {self.id}: tag {name} ({tag.symbol}): {exc}"
            ) from None
        try:
            async with asyncio.timeout(self._config.timeout_s):
                await asyncio.to_thread(client.write_tag, tag.symbol or "", data)
        except (OSError, TimeoutError, S7ConnectionError, S7TimeoutError) as exc:
            raise DeviceUnreachable(self._bridge, self.endpoint, f"device {self.id}: {exc}") from None
        except Exception as exc:  # the library's error for a refused write
            raise ReadError(self._bridge, self.endpoint, tag.symbol or "", f"write refused: {exc}") from None

    async def close(self) -> None:
        """Close the session; idempotent."""
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.disconnect)

    def _require_client(self) -> Client:
        if self._client is None:
            raise DeviceUnreachable(self._bridge, self.endpoint, f"device {self.id}: not connected")
        return self._client


def _has(catalog: SymbolCatalog, symbol: str) -> bool:
    try:
        catalog.resolve(symbol)
    except KeyError:
        return False
    return True


async def browse_symbols(host: str, port: int = 102, *, poll: str = "default") -> list[S7Tag]:
    """Connect once and make a tag of every symbol the PLC lists that has a type we publish."""
    client = Client()
    await asyncio.to_thread(client.connect, host, port)
    try:
        catalog = await asyncio.to_thread(client.refresh_tag_catalog)
    finally:
        await asyncio.to_thread(client.disconnect)
    tags: list[S7Tag] = []
    for symbol in catalog:
        s7type = s7_type_of(symbol)
        if s7type is None:
            continue
        tags.append(
            S7Tag(
                name=symbol.name.replace('"', "").replace(".", "/"),
                symbol=symbol.name,
                type=s7type,  # type: ignore[arg-type]  # checked against S7_TYPES above
                length=symbol.string_length or None if s7type in ("STRING", "WSTRING") else None,
                poll=poll,
            )
        )
    return tags


def _main(argv: Sequence[str]) -> int:
    if not argv:
        print("usage: python -m bridges.s7.plus HOST [PORT]", file=sys.stderr)
        return 2
    tags = asyncio.run(browse_symbols(argv[0], int(argv[1]) if len(argv) > 1 else 102))
    for tag in tags:
        print(f"- {{name: {tag.name!r}, symbol: {tag.symbol!r}, type: {tag.type}}}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
