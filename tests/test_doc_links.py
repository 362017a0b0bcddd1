"""README.md and docs/*.md: relative links reach a file (``#anchor``: a heading); code paths name a file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#+ (.*)$", re.MULTILINE)
_LINK = re.compile(r"\]\(([^)\s#]*)(?:#([^)\s]+))?\)")
# a code path in backticks: `uns/historian/stats.py`, `bridges/plc/`, `uns/historian/stats.StoreStats` (module.Name);
# hub/ and deploy/ are left out (hub/... is also the hub's own topics; deploy/ files are often the reader's own)
_CODE_PATH = re.compile(r"`((?:uns|bridges|model|bench|tests|scripts|examples|demo)/[\w./-]*)`")


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


def _names_a_file(reference: str) -> bool:
    path = REPO / reference
    if path.exists() or (REPO / f"{reference}.py").exists():
        return True
    module, _, name = reference.rpartition(".")  # module.Name: the module's file defines Name
    source = REPO / f"{module}.py"
    defined = re.compile(rf"^(?:class |def |async def )?{re.escape(name)}\b", re.MULTILINE)
    return bool(module) and source.is_file() and defined.search(source.read_text()) is not None


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_code_paths_name_a_file_or_a_name_in_one(doc: Path) -> None:
    assert [ref for ref in _CODE_PATH.findall(doc.read_text()) if not _names_a_file(ref)] == []


@pytest.mark.parametrize(
    ("reference", "names"),
    [
        ("uns/historian/stats.py", True),
        ("bridges/plc/", True),
        ("model/__init__", True),
        ("uns/historian/stats.StoreStats", True),
        ("uns/historian/stats.NoSuchName", False),
        ("bridges/plc/PlcSource", False),  # a class named as if it were a file: bridges/plc/source.py holds it
    ],
)
def test_a_code_path_names_a_file_or_a_name_in_one(reference: str, names: bool) -> None:
    assert _names_a_file(reference) is names


def test_the_anchor_of_a_heading_is_githubs() -> None:
    assert _anchor("Historian: `bench/historian.py`") == "historian-benchhistorianpy"
    assert _anchor("The demo's business systems (ERP, QMS, CMMS)") == "the-demos-business-systems-erp-qms-cmms"
