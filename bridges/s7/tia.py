"""Tag import from a TIA Portal / STEP 7 data block source (``.db``): ``DATA_BLOCK ... STRUCT ... END_STRUCT``.

The format: what TIA Portal writes with "Generate source from blocks" (and STEP 7 Classic's "Generate
source"): optional ``TYPE "udt" STRUCT ... END_STRUCT; END_TYPE`` blocks, then ``DATA_BLOCK "name"``,
its attributes and ``STRUCT`` of members ``Name : Type [:= initial];`` with comments, nested ``Struct``,
``Array[lo..hi, ...] of`` anything, ``String[n]``/``WString[n]``, and UDTs defined in the file.

Offsets follow the S7 rules for standard (not optimized) blocks: BOOLs pack into the bits of a byte,
BYTE/CHAR/SINT/USINT take the next byte, every other type, every STRUCT and every ARRAY starts on an
even byte, and a STRUCT or ARRAY ends on an even byte. An optimized DB has no fixed offsets: read it
with protocol s7commplus (experimental) or switch 'Optimized block access' off.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from model.bridges.s7 import S7DbSource, S7Device, S7Tag
from model.bridges.s7_address import S7_TYPES
from uns.errors import ConfigError

__all__ = ["DbSourceError", "Leaf", "db_tags", "device_tags", "parse_db_source"]

_TOKEN = re.compile(r"""\s*(?:(?P<quoted>"[^"]*")|(?P<text>'[^']*')|(?P<range>\.\.)|(?P<assign>:=)
                        |(?P<word>[A-Za-z_#][\w#]*)|(?P<number>[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<sym>[^\s]))""",
                    re.VERBOSE)  # fmt: skip
_COMMENT = re.compile(r"//[^\n]*|\(\*.*?\*\)|\{[^}]*\}", re.DOTALL)
_ALIASES = {"DT": "DATE_AND_TIME", "DATE": "UINT", "TIME_OF_DAY": "UDINT", "TOD": "UDINT", "S5TIME": "S5TIME"}
_BYTE_ALIGNED = {"BYTE", "CHAR", "SINT", "USINT"}
_OPTIMIZED = re.compile(r"DATA_BLOCK\s+\S+\s*\{[^}]*S7_Optimized_Access\s*:=\s*'TRUE'", re.IGNORECASE)


class DbSourceError(ValueError):
    """A DB source that does not parse; the message names the line and what was expected."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {reason}")


@dataclasses.dataclass(frozen=True, slots=True)
class _Token:
    text: str
    line: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Member:
    name: str
    type: _Type
    comment: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Type:
    kind: str
    """An S7 type name, or STRUCT, or ARRAY."""
    length: int = 0
    members: tuple[_Member, ...] = ()
    dims: tuple[tuple[int, int], ...] = ()
    element: _Type | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Leaf:
    """One scalar of the DB: its path, S7 type, byte offset, bit and (strings) length."""

    path: str
    type: str
    byte: int
    bit: int | None
    length: int | None
    comment: str


class _Parser:
    def __init__(self, text: str) -> None:
        comments: dict[int, str] = {}
        for match in re.finditer(r"//([^\n]*)", text):
            comments[text.count("\n", 0, match.start()) + 1] = match[1].strip()
        self.comments = comments
        stripped = _COMMENT.sub(lambda m: "\n" * m[0].count("\n"), text)
        self.tokens: list[_Token] = []
        line, pos = 1, 0
        for match in _TOKEN.finditer(stripped):
            line += stripped.count("\n", pos, match.start(match.lastgroup or 0))
            pos = match.start(match.lastgroup or 0)
            self.tokens.append(_Token(match[match.lastgroup or 0], line))
        self.at = 0
        self.udts: dict[str, _Type] = {}

    def peek(self) -> str:
        return self.tokens[self.at].text.upper() if self.at < len(self.tokens) else ""

    def line(self) -> int:
        return self.tokens[min(self.at, len(self.tokens) - 1)].line if self.tokens else 1

    def take(self, *expected: str) -> str:
        if self.at >= len(self.tokens):
            raise DbSourceError(self.line(), f"the file ends where {' or '.join(expected) or 'more'} was expected")
        token = self.tokens[self.at]
        if expected and token.text.upper() not in expected:
            raise DbSourceError(token.line, f"expected {' or '.join(expected)}, found {token.text!r}")
        self.at += 1
        return token.text

    def document(self) -> _Type:
        while self.peek() == "TYPE":
            self.take("TYPE")
            name = self.take().strip('"')
            self._skip_to("STRUCT")
            self.udts[name.upper()] = self.struct()
            self._skip_to("END_TYPE")
            self.take("END_TYPE")
        self._skip_to("DATA_BLOCK")
        self.take("DATA_BLOCK")
        self.take()
        while self.peek() not in ("STRUCT", "") and not self.tokens[self.at].text.startswith('"'):
            self.at += 1
        if self.peek() == "STRUCT":
            return self.struct()
        return self.udt(self.take())

    def _skip_to(self, word: str) -> None:
        while self.peek() not in (word, ""):
            self.at += 1

    def struct(self) -> _Type:
        self.take("STRUCT")
        members: list[_Member] = []
        while self.peek() != "END_STRUCT":
            if not self.peek():
                raise DbSourceError(self.line(), "STRUCT without END_STRUCT")
            line = self.tokens[self.at].line
            name = self.take().strip('"')
            self.take(":")
            kind = self.type()
            if self.peek() == ":=":
                self.take(":=")
                while self.peek() not in (";", ""):
                    self.at += 1
            self.take(";")
            members.append(_Member(name, kind, self.comments.get(line, "")))
        self.take("END_STRUCT")
        if self.peek() == ";":
            self.take(";")
        return _Type("STRUCT", members=tuple(members))

    def udt(self, name: str) -> _Type:
        found = self.udts.get(name.strip('"').upper())
        if found is None:
            raise DbSourceError(self.line(), f"type {name} is not defined in this file (export it with the DB)")
        return found

    def type(self) -> _Type:
        word = self.peek()
        if word == "STRUCT":
            return self.struct()
        if self.tokens[self.at].text.startswith('"'):
            return self.udt(self.take())
        if word == "ARRAY":
            self.take("ARRAY")
            self.take("[")
            dims: list[tuple[int, int]] = []
            while True:
                low = int(self.take())
                self.take("..")
                high = int(self.take())
                if high < low:
                    raise DbSourceError(self.line(), f"array bounds {low}..{high}")
                dims.append((low, high))
                if self.take(",", "]") == "]":
                    break
            self.take("OF")
            return _Type("ARRAY", dims=tuple(dims), element=self.type())
        line = self.line()
        name = _ALIASES.get(word, word)
        self.take()
        if name in ("STRING", "WSTRING"):
            length = 254
            if self.peek() == "[":
                self.take("[")
                length = int(self.take())
                self.take("]")
            return _Type(name, length=length)
        if name not in S7_TYPES or name == "COUNTER":
            raise DbSourceError(line, f"type {word} is not supported")
        return _Type(name)


def _layout(kind: _Type, path: str, bits: int, comment: str, out: list[Leaf]) -> int:
    """Place ``kind`` at or after bit offset ``bits``; returns the bit offset after it."""
    if kind.kind == "BOOL":
        out.append(Leaf(path, "BOOL", bits // 8, bits % 8, None, comment))
        return bits + 1
    if kind.kind in _BYTE_ALIGNED:
        start = -(-bits // 8) * 8
        out.append(Leaf(path, kind.kind, start // 8, None, None, comment))
        return start + 8
    start = -(-bits // 16) * 16
    if kind.kind == "STRUCT":
        end = start
        for member in kind.members:
            end = _layout(member.type, f"{path}/{member.name}" if path else member.name, end, member.comment, out)
        return -(-end // 16) * 16
    if kind.kind == "ARRAY":
        element = kind.element or _Type("BYTE")
        end = start
        for index in _indices(kind.dims):
            end = _layout(element, f"{path}[{index}]", end, comment, out)
        return -(-end // 16) * 16
    if kind.kind in ("STRING", "WSTRING"):
        out.append(Leaf(path, kind.kind, start // 8, None, kind.length, comment))
        size = 2 + kind.length if kind.kind == "STRING" else 4 + 2 * kind.length
        return start + 8 * size
    out.append(Leaf(path, kind.kind, start // 8, None, None, comment))
    return start + 8 * S7_TYPES[kind.kind].size


def _indices(dims: tuple[tuple[int, int], ...]) -> Iterator[str]:
    if not dims:
        yield ""
        return
    (low, high), rest = dims[0], dims[1:]
    for value in range(low, high + 1):
        for tail in _indices(rest):
            yield f"{value},{tail}" if tail else str(value)


def parse_db_source(text: str) -> list[Leaf]:
    """Every scalar of the DB with its offset, in declaration order; an optimized DB is refused."""
    if optimized := _OPTIMIZED.search(text):
        raise DbSourceError(
            text.count("\n", 0, optimized.start()) + 1,
            "the DB has S7_Optimized_Access := 'TRUE': an optimized DB has no fixed offsets; switch off "
            "'Optimized block access' in its attributes, download, and export the source again",
        )
    parser = _Parser(text)
    root = parser.document()
    leaves: list[Leaf] = []
    _layout(root, "", 0, "", leaves)
    return leaves


def db_tags(source: S7DbSource, text: str) -> list[S7Tag]:
    """The tags of a DB source: metric ``<prefix><member path>``, address ``DB<n>.DB<X|B|W|D><offset>``."""
    tags: list[S7Tag] = []
    for leaf in parse_db_source(text):
        width = S7_TYPES[leaf.type].widths
        letter = "X" if leaf.bit is not None else ("B" if "B" in width else width[-1])
        address = f"DB{source.db}.DB{letter}{leaf.byte}" + (f".{leaf.bit}" if leaf.bit is not None else "")
        tags.append(
            S7Tag(
                name=f"{source.prefix}{leaf.path}",
                address=address,
                type=leaf.type,  # type: ignore[arg-type]  # a name of S7_TYPES, checked by the parser
                length=leaf.length,
                poll=source.poll,
                writable=source.writable,
                description=leaf.comment,
            )
        )
    return tags


def device_tags(device: S7Device, where: str) -> list[S7Tag]:
    """The device's tags and those of its DB sources; a bad source raises ``ConfigError`` naming file and line."""
    tags = list(device.tags)
    names = {tag.name for tag in tags}
    for index, source in enumerate(device.db_sources):
        path = f"{where}.db_sources[{index}]"
        try:
            text = source.path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(source=str(source.path), path=path, reason=f"cannot read: {exc.strerror}") from None
        try:
            imported = db_tags(source, text)
        except (DbSourceError, ValueError) as exc:
            raise ConfigError(source=str(source.path), path=path, reason=str(exc)) from None
        for tag in imported:
            if tag.name in names:
                raise ConfigError(source=str(source.path), path=path, reason=f"metric {tag.name} is defined twice")
            names.add(tag.name)
        tags.extend(imported)
    return tags
