"""The controller's tag and UDT list: upload (symbol and template objects), disk cache, type checks, browse.

Logix 5000 Data Access (1756-PM020): Get Instance Attribute List (0x55) on the Symbol object
(class 0x6B) lists tags with name, type word and dimensions; a type word with bit 15 set is a
structure whose low 12 bits name its Template object (class 0x6C) instance, read with Get
Attribute List (0x03) and Read (0x4C). The parsers here are pure; ``load_symbols`` does the I/O.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from bridges.ethernetip.cip import (
    ATOMIC_TYPES,
    GET_ATTRIBUTE_LIST,
    GET_INSTANCE_ATTRIBUTE_LIST,
    READ_TAG,
    SYMBOL_CLASS,
    TEMPLATE_CLASS,
    CipDecodeError,
    Reply,
    encode_request,
    logical_path,
    symbolic_segment,
)
from model.bridges.ethernetip import EthernetIpTag
from uns.files import replace_file

__all__ = [
    "Member",
    "Symbol",
    "SymbolTable",
    "Template",
    "load_symbols",
    "parse_symbol_page",
    "parse_template",
    "parse_template_attributes",
]

log = logging.getLogger(__name__)

_STRUCT_BIT = 0x8000
_SYSTEM_BIT = 0x1000
_DIMS_SHIFT = 13
_ATOMIC_BY_CODE = {t.code: t.name for t in ATOMIC_TYPES.values()}
_MAX_PAGES = 10_000
"""Bound on list requests per scope, against a controller that keeps answering 'more'."""


class _Requester(Protocol):
    async def request(self, message: bytes) -> Reply: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Symbol:
    """One tag of the controller: full name (``Program:Main.X`` when program-scoped), type word, dimensions."""

    name: str
    type_word: int
    dims: tuple[int, ...]

    @property
    def template(self) -> int | None:
        """Template instance of a structure tag."""
        return self.type_word & 0x0FFF if self.type_word & _STRUCT_BIT else None


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    """One member of a UDT: name, type word, array length (or bit number for a BOOL), byte offset."""

    name: str
    type_word: int
    info: int
    offset: int


@dataclasses.dataclass(frozen=True, slots=True)
class Template:
    """A UDT (or built-in structure such as STRING) definition."""

    name: str
    handle: int
    size: int
    members: tuple[Member, ...]

    @property
    def is_string(self) -> bool:
        """Shaped like STRING: LEN (DINT) then DATA (SINT array)."""
        names = [m.name for m in self.members]
        return names[:2] == ["LEN", "DATA"] and (self.members[1].type_word & 0xFF) == 0xC2


def parse_symbol_page(data: bytes, scope: str | None) -> tuple[list[Symbol], int]:
    """Symbols of one Get Instance Attribute List reply (attributes 1, 2, 8) and the last instance id."""
    symbols, offset, last = [], 0, 0
    try:
        while offset < len(data):
            last, length = struct.unpack_from("<IH", data, offset)
            offset += 6
            name = data[offset : offset + length].decode("latin-1")
            offset += length
            type_word, *dims = struct.unpack_from("<H3I", data, offset)
            offset += 14
            ndims = (type_word >> _DIMS_SHIFT) & 0x3
            full = f"{scope}.{name}" if scope else name
            symbols.append(Symbol(full, type_word, tuple(dims[:ndims])))
    except struct.error as exc:
        raise CipDecodeError(offset, f"symbol list entry cut short: {exc}") from exc
    return symbols, last


def parse_template_attributes(data: bytes) -> tuple[int, int, int, int]:
    """Get Attribute List reply for attributes 4, 5, 2, 1: (definition words, size, member count, handle)."""
    values: dict[int, int] = {}
    try:
        (count,) = struct.unpack_from("<H", data)
        offset = 2
        for _ in range(count):
            attribute, status = struct.unpack_from("<HH", data, offset)
            offset += 4
            fmt = "<I" if attribute in (4, 5) else "<H"
            (values[attribute],) = struct.unpack_from(fmt, data, offset)
            offset += struct.calcsize(fmt)
            if status:
                raise CipDecodeError(offset, f"template attribute {attribute} status 0x{status:02X}")
        return values[4], values[5], values[2], values[1]
    except (struct.error, KeyError) as exc:
        raise CipDecodeError(len(data), f"template attributes incomplete: {exc}") from exc


def parse_template(data: bytes, members: int, handle: int, size: int) -> Template:
    """A template's definition (member infos, then ``Name;...`` and member names, NUL-separated)."""
    if len(data) < 8 * members:
        raise CipDecodeError(len(data), f"template shorter than its {members} member entries")
    infos = [struct.unpack_from("<HHI", data, 8 * i) for i in range(members)]
    names = data[8 * members :].split(b"\x00")
    title = names[0].decode("latin-1").split(";", 1)[0]
    member_names = [n.decode("latin-1") for n in names[1 : 1 + members]]
    if len(member_names) < members:
        raise CipDecodeError(len(data), f"template names {len(member_names)} for {members} members")
    return Template(
        name="STRING" if title == "ASCIISTRING82" else title,
        handle=handle,
        size=size,
        members=tuple(
            Member(name, type_word, info, offset)
            for name, (info, type_word, offset) in zip(member_names, infos, strict=True)
        ),
    )


@dataclasses.dataclass(slots=True)
class SymbolTable:
    """The uploaded tag and UDT list of one controller."""

    symbols: dict[str, Symbol]
    templates: dict[int, Template]
    stale: bool = False
    """Set when a read suggests the program changed; the next connect uploads everything again."""

    def type_of(self, address: str) -> str | None:
        """The Logix type name at a dotted address (``Tag``, ``Tag.Member``, ``Program:P.Tag.M``), if known."""
        parts = address.split("{")[0].split(".")
        if parts[0].startswith("Program:") and len(parts) > 1:
            parts = [f"{parts[0]}.{parts[1]}", *parts[2:]]
        symbol = self.symbols.get(parts[0].split("[")[0])
        if symbol is None:
            return None
        word = symbol.type_word
        for part in parts[1:]:
            if part.isdigit():
                return "BOOL"
            template = self.templates.get(word & 0x0FFF) if word & _STRUCT_BIT else None
            member = next((m for m in template.members if m.name == part.split("[")[0]), None) if template else None
            if member is None:
                return None
            word = member.type_word
        return self._name(word)

    def _name(self, word: int) -> str:
        if word & _STRUCT_BIT:
            template = self.templates.get(word & 0x0FFF)
            return "STRING" if template is not None and template.is_string else (template.name if template else "?")
        return _ATOMIC_BY_CODE.get(word & 0xFF, f"0x{word & 0xFF:02X}")

    def check(self, tags: Iterable[EthernetIpTag]) -> dict[str, str]:
        """Tag name -> why its declared type does not match the controller's (unknown tags are left to reads)."""
        problems = {}
        for tag in tags:
            found = self.type_of(tag.address)
            if found is not None and found != "?" and found != tag.type:
                problems[tag.name] = f"controller has {tag.address} as {found}, the config declares {tag.type}"
        return problems

    def string_handle(self, tag: EthernetIpTag) -> int | None:
        """The structure handle to write a STRING tag with (user string types have their own)."""
        symbol = self.symbols.get(tag.parsed.root)
        if tag.type != "STRING" or symbol is None or symbol.template is None or len(tag.parsed.parts) > 1:
            return None
        template = self.templates.get(symbol.template)
        return template.handle if template is not None else None

    def browse(self) -> list[dict[str, object]]:
        """Every readable atomic or STRING leaf as a ready-to-paste tag entry (arrays as ``[0]{N}``)."""
        out: list[dict[str, object]] = []
        for symbol in sorted(self.symbols.values(), key=lambda s: s.name):
            self._leaves(symbol.name, symbol.type_word, symbol.dims, out, depth=0)
        return out

    def _leaves(self, address: str, word: int, dims: Sequence[int], out: list[dict[str, object]], depth: int) -> None:
        name = self._name(word)
        count = 1
        for dim in dims:
            count *= dim
        if name in ATOMIC_TYPES or name == "STRING":
            entry: dict[str, object] = {"name": address.replace(".", "/").replace("Program:", ""), "type": name}
            entry["address"] = f"{address}[0]{{{count}}}" if dims and name != "STRING" else address
            if dims and name == "STRING":
                entry["address"] = f"{address}[0]"
            out.append(entry)
            return
        template = self.templates.get(word & 0x0FFF)
        if template is None or depth > 8 or dims:
            return  # arrays of structures: list one element's members by hand (Tag[0].Member)
        for member in template.members:
            if member.name.startswith(("__", "ZZZZZZZZZZ")):
                continue  # hidden members (host words of BOOLs)
            member_dims = (member.info,) if member.info and (member.type_word & 0xFF) != 0xC1 else ()
            self._leaves(f"{address}.{member.name}", member.type_word, member_dims, out, depth + 1)

    def to_json(self) -> str:
        """The table as JSON (the disk cache)."""
        return json.dumps(
            {
                "symbols": [[s.name, s.type_word, list(s.dims)] for s in self.symbols.values()],
                "templates": {
                    str(i): [t.name, t.handle, t.size, [[m.name, m.type_word, m.info, m.offset] for m in t.members]]
                    for i, t in self.templates.items()
                },
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SymbolTable:
        """Read the disk cache back; ``ValueError`` if it is not one."""
        raw = json.loads(text)
        symbols = {name: Symbol(name, word, tuple(dims)) for name, word, dims in raw["symbols"]}
        templates = {
            int(i): Template(name, handle, size, tuple(Member(*m) for m in members))
            for i, (name, handle, size, members) in raw["templates"].items()
        }
        return cls(symbols, templates)


async def _upload_symbols(client: _Requester, scope: str | None) -> list[Symbol]:
    prefix = symbolic_segment(scope) if scope else b""
    symbols: list[Symbol] = []
    instance = 0
    for _ in range(_MAX_PAGES):
        reply = await client.request(
            encode_request(
                GET_INSTANCE_ATTRIBUTE_LIST,
                prefix + logical_path(SYMBOL_CLASS, instance),
                struct.pack("<4H", 3, 1, 2, 8),
            )
        )
        if reply.status not in (0x00, 0x06):
            raise _Unsupported(f"tag list of {scope or 'controller'}: {reply.describe()}")
        page, last = parse_symbol_page(reply.data, scope)
        symbols.extend(page)
        if reply.status == 0x00 or not page:
            return symbols
        instance = last + 1
    return symbols


async def _upload_template(client: _Requester, instance: int) -> Template:
    reply = await client.request(
        encode_request(GET_ATTRIBUTE_LIST, logical_path(TEMPLATE_CLASS, instance), struct.pack("<5H", 4, 4, 5, 2, 1))
    )
    if reply.status != 0:
        raise _Unsupported(f"template {instance}: {reply.describe()}")
    words, size, members, handle = parse_template_attributes(reply.data)
    total, data = words * 4 - 23, b""
    for _ in range(_MAX_PAGES):
        chunk = await client.request(
            encode_request(
                READ_TAG, logical_path(TEMPLATE_CLASS, instance), struct.pack("<IH", len(data), total - len(data))
            )
        )
        if chunk.status not in (0x00, 0x06):
            raise _Unsupported(f"template {instance} definition: {chunk.describe()}")
        data += chunk.data
        if chunk.status == 0x00 or not chunk.data:
            break
    return parse_template(data, members, handle, size)


class _Unsupported(Exception):
    """The controller does not list its tags (not a Logix, or access denied)."""


async def _user_symbols(client: _Requester) -> dict[str, Symbol]:
    """Every user tag, controller and program scope (system, I/O and hidden tags left out)."""
    symbols: dict[str, Symbol] = {}
    programs: list[str] = []
    for symbol in await _upload_symbols(client, None):
        if symbol.name.startswith("Program:"):
            programs.append(symbol.name)
        elif not (symbol.type_word & _SYSTEM_BIT or symbol.name.startswith("__") or ":" in symbol.name):
            symbols[symbol.name] = symbol
    for program in programs:
        for symbol in await _upload_symbols(client, program):
            short = symbol.name[len(program) + 1 :]
            if not (symbol.type_word & _SYSTEM_BIT or short.startswith("__") or ":" in short):
                symbols[symbol.name] = symbol
    return symbols


async def upload(client: _Requester, symbols: dict[str, Symbol] | None = None) -> SymbolTable:
    """Read the controller's symbols (controller and program scope, unless given) and every template they use."""
    if symbols is None:
        symbols = await _user_symbols(client)
    templates: dict[int, Template] = {}
    pending = [s.template for s in symbols.values() if s.template is not None]
    while pending:
        instance = pending.pop()
        if instance is None or instance in templates:
            continue
        templates[instance] = template = await _upload_template(client, instance)
        pending.extend(m.type_word & 0x0FFF for m in template.members if m.type_word & _STRUCT_BIT)
    return SymbolTable(symbols, templates)


async def load_symbols(client: _Requester, cache: Path | None, *, endpoint: str) -> SymbolTable | None:
    """The tag list: the cached one when the controller's symbol list is unchanged, else uploaded and cached.

    A controller that cannot list its tags (an EtherNet/IP server that is not a Logix, or 0x08/0x05
    answers) gives None: the configured types are then trusted and checked by each read's reply.
    """
    cached = await asyncio.to_thread(_read_cache, cache, endpoint) if cache is not None else None
    try:
        symbols = await _user_symbols(client)  # a few requests: names, types and dimensions only
        if cached is not None and not cached.stale and cached.symbols == symbols:
            if await _same_templates(client, cached):
                log.info("%s: tag list unchanged since cached (%d tags)", endpoint, len(cached.symbols))
                return cached
            log.info("%s: a structure was redefined since the tag list was cached", endpoint)
        table = await upload(client, symbols)
    except _Unsupported as exc:
        log.info("%s: no tag list (%s); trusting the configured types", endpoint, exc)
        return None
    log.info("%s: uploaded tag list: %d tags, %d structures", endpoint, len(table.symbols), len(table.templates))
    if cache is not None:
        await asyncio.to_thread(_write_cache, cache, table)
    return table


def _read_cache(cache: Path, endpoint: str) -> SymbolTable | None:
    if not cache.exists():
        return None
    try:
        return SymbolTable.from_json(cache.read_text())
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("%s: tag cache %s unreadable (%s); uploading again", endpoint, cache, exc)
        return None


def _write_cache(cache: Path, table: SymbolTable) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    replace_file(cache, table.to_json())  # atomic: a crash never leaves half a cache


async def _same_templates(client: _Requester, cached: SymbolTable) -> bool:
    """Every cached template still has its structure handle (a CRC of its definition): no UDT was redefined."""
    for instance, template in cached.templates.items():
        reply = await client.request(
            encode_request(GET_ATTRIBUTE_LIST, logical_path(TEMPLATE_CLASS, instance), struct.pack("<2H", 1, 1))
        )
        if reply.status != 0 or len(reply.data) < 8:
            return False
        attribute, status, handle = struct.unpack_from("<HHH", reply.data, 2)
        if (attribute, status, handle) != (1, 0, template.handle):
            return False
    return True
