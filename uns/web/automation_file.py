"""Editing one list section (``transforms:``, ``rules:``) of the settings file's text, keeping the rest as written.

The web editor changes one item at a time. Rather than re-dumping the file (which would drop every
comment), the item's lines are found through PyYAML's node marks and only they are replaced; the
other items, keys and comments stay byte for byte. An item is written as the user's own YAML text
when it has one (its comments kept), else dumped from the model. Every result is parsed back and
must equal what was meant, else the section alone is rewritten (its comments lost, the rest kept).
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Sequence

import yaml

from uns.config_file import parse_yaml
from uns.errors import ConfigError

__all__ = ["Item", "Section", "dump_item", "edit_section", "item_line", "read_section"]


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    """One item of the section as written: its parsed value and its text (dedented, comments kept)."""

    value: object
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class Section:
    """A list section of a settings file: ``present`` says whether the key is there at all."""

    present: bool
    items: tuple[Item, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class _Span:
    start: int  # index of the item's first line (its dash)
    end: int  # index just past its last content line
    indent: int  # the dash's column


def _root(text: str, source: str) -> yaml.MappingNode | None:
    parse_yaml(text, source)  # a syntax error names the line and column, as the settings loader does
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    return node if isinstance(node, yaml.MappingNode) else None


def _value_node(root: yaml.MappingNode | None, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if root is None:
        return None
    for key_node, value_node in root.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _spans(text: str, sequence: yaml.SequenceNode) -> list[_Span]:
    spans = []
    for node in sequence.value:
        dash = text.rfind("-", 0, node.start_mark.index)
        start = _line_start(text, dash)
        # the node's end runs on over blank and comment lines up to the next item: they stay outside
        lines = text[start : node.end_mark.index].splitlines(keepends=True)
        while len(lines) > 1 and (not lines[-1].strip() or lines[-1].lstrip().startswith("#")):
            lines.pop()
        end = start + sum(len(line) for line in lines)
        spans.append(_Span(start=start, end=end, indent=dash - start))
    return spans


def read_section(text: str, key: str, source: str) -> Section:
    """The section's items as written.

    Raises:
        ConfigError: the text is not YAML (naming the line), or the section is not a list.
    """
    data = parse_yaml(text, source)
    if key not in data or data[key] is None:
        return Section(present=key in data, items=())
    values = data[key]
    if not isinstance(values, list):
        raise ConfigError(source=source, path=key, reason="must be a list", value=type(values).__name__)
    found = _value_node(_root(text, source), key)
    if found is None or not isinstance(found[1], yaml.SequenceNode) or found[1].flow_style:
        return Section(present=True, items=tuple(Item(value=v, text=dump_item(v)) for v in values))
    spans = _spans(text, found[1])
    items = []
    for value, span in zip(values, spans, strict=True):
        lines = text[span.start : span.end].splitlines(keepends=True)
        # "- name: x" and its continuation lines, as a mapping at column 0
        first = lines[0][span.indent + 1 :].lstrip(" ")
        rest = textwrap.dedent("".join(lines[1:]))
        items.append(Item(value=value, text=(first + rest).strip("\n").rstrip() + "\n"))
    return Section(present=True, items=tuple(items))


def dump_item(value: object) -> str:
    """One item as block YAML (keys in the model's order)."""
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)


def _as_entry(item_text: str, indent: int) -> str:
    lines = item_text.rstrip("\n").splitlines() or ["{}"]
    pad = " " * indent
    out = [f"{pad}- {lines[0]}"] + [f"{pad}  {line}" if line.strip() else "" for line in lines[1:]]
    return "\n".join(out) + "\n"


def _whole_section(text: str, key: str, items: Sequence[str], root: yaml.MappingNode | None) -> str:
    body = "".join(_as_entry(item, 0) for item in items) if items else ""
    block = f"{key}:\n{body}" if items else f"{key}: []\n"
    found = _value_node(root, key)
    if found is None:
        return text + ("" if not text or text.endswith("\n") else "\n") + block
    key_node, value_node = found
    start = _line_start(text, key_node.start_mark.index)
    end = value_node.end_mark.index
    if isinstance(value_node, yaml.ScalarNode) or getattr(value_node, "flow_style", False):
        end = text.find("\n", end - 1 if end else 0)  # to the end of its line, trailing comment included
        end = len(text) if end < 0 else end + 1
    else:
        lines = text[start:end].splitlines(keepends=True)
        while len(lines) > 1 and (not lines[-1].strip() or lines[-1].lstrip().startswith("#")):
            lines.pop()
        end = start + sum(len(line) for line in lines)
    return text[:start] + block + text[end:]


def edit_section(
    text: str, key: str, *, index: int | None, item: str | None, expected: Sequence[object], source: str
) -> str:
    """``text`` with the section's item ``index`` replaced by ``item`` (None: removed), or ``item`` appended.

    ``expected`` is the section's list as it must parse afterwards; when the text edit would not give
    it, the section alone is rewritten from ``expected``.

    Raises:
        ConfigError: the text is not YAML.
    """
    root = _root(text, source)
    found = _value_node(root, key)
    edited: str | None = None
    if found is not None and isinstance(found[1], yaml.SequenceNode) and not found[1].flow_style and found[1].value:
        spans = _spans(text, found[1])
        if index is None and item is not None:
            last = spans[-1]
            glue = "" if text[: last.end].endswith("\n") else "\n"
            edited = text[: last.end] + glue + _as_entry(item, last.indent) + text[last.end :]
        elif index is not None and 0 <= index < len(spans):
            span = spans[index]
            entry = _as_entry(item, span.indent) if item is not None else ""
            edited = text[: span.start] + entry + text[span.end :]
    others = {k: v for k, v in parse_yaml(text, source).items() if k != key}
    if edited is not None and _parses_to(edited, key, expected, others, source):
        return edited
    whole = _whole_section(text, key, [dump_item(value) for value in expected], root)
    if not _parses_to(whole, key, expected, others, source):
        raise ConfigError(source=source, path=key, reason="the edited section does not read back as written")
    return whole


def _parses_to(text: str, key: str, expected: Sequence[object], others: dict[str, object], source: str) -> bool:
    try:
        data = parse_yaml(text, source)
    except ConfigError:
        return False
    rest = {k: v for k, v in data.items() if k != key}
    return (data.get(key) or []) == list(expected) and rest == others


def item_line(item_text: str, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the field at ``loc`` in an item's YAML text (the deepest part found), or None."""
    try:
        node: yaml.Node | None = yaml.compose(item_text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if isinstance(kv[0], yaml.ScalarNode) and kv[0].value == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    if line is None and node is not None:
        line = node.start_mark.line + 1
    return line
