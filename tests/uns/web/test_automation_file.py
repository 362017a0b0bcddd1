"""Editing one list section of a settings file's text: only the item's lines change, comments stay."""

from __future__ import annotations

import pytest

from uns.errors import ConfigError
from uns.web.automation_file import edit_section, item_line, read_section

FILE = """# hub settings
demo: true
rules:
  # first
  - name: a   # trailing
    trigger: {kind: x}

  # about b
  - name: b
    actions:
      - 1
# tail comment
web:
  port: 1
"""
A, B = {"name": "a", "trigger": {"kind": "x"}}, {"name": "b", "actions": [1]}


def test_items_read_as_written() -> None:
    section = read_section(FILE, "rules", "f")
    assert section.present
    assert [item.text for item in section.items] == [
        "name: a   # trailing\ntrigger: {kind: x}\n",
        "name: b\nactions:\n  - 1\n",
    ]
    assert [item.value for item in section.items] == [A, B]
    assert read_section(FILE, "transforms", "f").present is False


@pytest.mark.parametrize(
    ("index", "item", "expected", "text"),
    [
        (  # replaced: its own comment kept, the neighbours' too
            0,
            "name: c\n# mine\nx: 1\n",
            [{"name": "c", "x": 1}, B],
            FILE.replace("  - name: a   # trailing\n    trigger: {kind: x}\n", "  - name: c\n    # mine\n    x: 1\n"),
        ),
        (None, "name: c\n", [A, B, {"name": "c"}], FILE.replace("      - 1\n", "      - 1\n  - name: c\n")),
        (1, None, [A], FILE.replace("  - name: b\n    actions:\n      - 1\n", "")),
    ],
)
def test_an_edit_touches_only_its_item(index: int | None, item: str | None, expected: list[object], text: str) -> None:
    assert edit_section(FILE, "rules", index=index, item=item, expected=expected, source="f") == text


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("demo: true\n", "demo: true\nrules:\n- name: c\n"),  # no section yet
        ("demo: true\nrules: []  # none\nweb: {}\n", "demo: true\nrules:\n- name: c\nweb: {}\n"),  # flow style
        ("demo: true\nrules:\nweb: 1\n", "demo: true\nrules:\n- name: c\nweb: 1\n"),  # null
    ],
)
def test_a_section_not_in_block_style_is_rewritten_alone(before: str, after: str) -> None:
    assert edit_section(before, "rules", index=None, item="name: c\n", expected=[{"name": "c"}], source="f") == after


def test_a_broken_file_names_the_line() -> None:
    with pytest.raises(ConfigError, match="line 3"):
        edit_section("a: 1\nb: [\n", "rules", index=None, item="name: c\n", expected=[{"name": "c"}], source="f")


@pytest.mark.parametrize(
    ("loc", "line"),
    [(["name"], 1), (["trigger", "topic"], 3), (["actions", 1, "path"], 7), (["actions", 7], 4), (["path"], 1)],
)
def test_a_fields_line(loc: list[str | int], line: int) -> None:
    text = "name: a\ntrigger:\n  topic: x\nactions:\n  - {kind: alarm}\n  - kind: alarm\n    path: p\n"
    assert item_line(text, loc) == line  # a missing field: the item's first line
