"""Every relative link of README.md and docs/*.md reaches a file and, with ``#anchor``, one of its headings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#+ (.*)$", re.MULTILINE)
_LINK = re.compile(r"\]\(([^)\s#]*)(?:#([^)\s]+))?\)")


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text())):
        anchor = _anchor(heading)
        seen[anchor] = seen.get(anchor, -1) + 1
        found.add(anchor if seen[anchor] == 0 else f"{anchor}-{seen[anchor]}")  # repeated headings: -1, -2, ...
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_relative_links_reach_a_file_and_a_heading(doc: Path) -> None:
    broken = []
    for target, anchor in _LINK.findall(doc.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path = (doc.parent / target).resolve() if target else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target}#{anchor}: no such heading in {path.name}")
    assert broken == []


def test_the_anchor_of_a_heading_is_githubs() -> None:
    assert _anchor("Historian: `bench/historian.py`") == "historian-benchhistorianpy"
    assert _anchor("The demo's business systems (ERP, QMS, CMMS)") == "the-demos-business-systems-erp-qms-cmms"
