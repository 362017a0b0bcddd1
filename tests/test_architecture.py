"""docs/architecture.md stays true: the modules it names exist, and the packages depend the way it says."""

from __future__ import annotations

import ast
import functools
import re
import tomllib
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
_DOC = _ROOT / "docs" / "architecture.md"
_PACKAGES = ("model", "uns", "bridges", "demo", "hub")

# what the doc states as the one known exception to model <- uns <- bridges
_BRIDGES_REACHING_FURTHER = {("bridges/sim/mes_rules.py", "uns.mes")}
_NEVER_FROM_BRIDGES = ("uns.host", "uns.historian", "uns.web", "uns.sinks", "uns.rules", "uns.transforms")


@functools.cache
def _trees(package: str) -> tuple[tuple[Path, ast.Module], ...]:
    """Every module of ``package`` (the generated ``*_pb2.py`` aside), parsed once for all the checks of a run."""
    return tuple(
        (path, ast.parse(path.read_text()))
        for path in sorted((_ROOT / package).rglob("*.py"))
        if "_pb2" not in path.name
    )


@functools.cache
def _imports(package: str) -> tuple[tuple[str, str], ...]:
    """(file, module) of every absolute import of our packages in ``package``, nested ones included."""
    found: list[tuple[str, str]] = []
    for path, tree in _trees(package):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules = [node.module]
            else:
                continue
            relative = str(path.relative_to(_ROOT))
            found += [(relative, m) for m in modules if m.split(".")[0] in _PACKAGES]
    return tuple(found)


def test_every_module_the_map_names_exists() -> None:
    text = _DOC.read_text()
    named = set(re.findall(r"`((?:model|uns|bridges|demo|hub)/[\w/]+\.py)`", text))
    named |= set(re.findall(r"\b((?:model|uns|bridges|demo|hub)/[\w/]+\.py)\b", text))
    assert len(named) > 40
    placeholders = {n for n in named if "<" in n}
    missing = sorted(n for n in named - placeholders if not (_ROOT / n).is_file())
    assert missing == []


def test_model_imports_none_of_the_other_packages() -> None:
    assert [(f, m) for f, m in _imports("model") if m.split(".")[0] != "model"] == []


@pytest.mark.parametrize("package", ["bridges", "demo"])
def test_bridges_and_demo_never_import_the_hub_s_consumers(package: str) -> None:
    reaching = [(f, m) for f, m in _imports(package) if m.startswith(_NEVER_FROM_BRIDGES)]
    # the demo's ERP and QMS serve their REST APIs on the hub's web server class, not through the web UI
    assert reaching == ([("demo/systems.py", "uns.web.server")] if package == "demo" else [])


def test_bridges_reach_past_the_shared_layers_only_where_the_map_says() -> None:
    shared = ("uns.sparkplug", "uns.errors", "uns.clock", "uns.connect", "uns.mqtt", "uns.backoff", "uns.logs",
              "uns.config_file", "uns.retry_after", "uns.fleet", "uns.files", "uns.embedded_server",
              "uns.event_wait", "uns.ready")  # fmt: skip
    further = {
        (f, ".".join(m.split(".")[:2]))
        for f, m in _imports("bridges")
        if m.startswith("uns.") and not m.startswith(shared)
    }
    assert further == _BRIDGES_REACHING_FURTHER


def test_uns_imports_neither_bridges_nor_demo() -> None:
    assert [(f, m) for f, m in _imports("uns") if m.split(".")[0] in ("bridges", "demo", "hub")] == []


@pytest.mark.parametrize("package", ["model", "uns", "bridges", "demo"])
def test_only_the_composition_root_wires_everything(package: str) -> None:
    assert [(f, m) for f, m in _imports(package) if m.split(".")[0] == "hub"] == []


def test_the_mes_imports_nothing_of_the_historian() -> None:
    # peers on the store: the MES gets the store's writer, its tables and the query kit, never the historian
    assert [(f, m) for f, m in _imports("uns") if f.startswith("uns/mes/") and m.startswith("uns.historian")] == []


@pytest.mark.parametrize("floor", ["uns/store/", "uns/query/"])
def test_the_floor_imports_none_of_the_components_on_it(floor: str) -> None:
    components = ("uns.historian", "uns.mes", "uns.rules", "uns.web", "uns.sinks")
    assert [(f, m) for f, m in _imports("uns") if f.startswith(floor) and m.startswith(components)] == []


def test_the_query_kit_s_row_limit_is_defined_once() -> None:
    # the historian, the MES views and the sinks' history import MAX_LIMIT from the kit instead of copying it
    defined = sorted(
        str(path.relative_to(_ROOT))
        for path, tree in _trees("uns")
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "MAX_LIMIT" for t in node.targets)
    )
    assert defined == ["uns/query/args.py"]


def test_the_web_reads_the_store_only_through_its_components() -> None:
    # history, MES views, alarm history and the MES event log each come from their owner's narrow reader
    reaching = [(f, m) for f, m in _imports("uns") if f.startswith("uns/web/") and m.startswith("uns.store")]
    assert reaching == []
    for path, tree in _trees("uns"):
        if not path.is_relative_to(_ROOT / "uns" / "web"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not [n for n in names if n.split(".")[0] == "duckdb"], path


_MAX_LINES = 600  # issue 16: split a module before it grows past this (STYLE.md: aim for 100-400)


def test_no_product_module_is_over_600_lines() -> None:
    # the packages the wheel ships (pyproject's packages, as _PACKAGES); tests and bench are not product code,
    # and the generated *_pb2.py is not written by hand
    sizes = {
        str(path.relative_to(_ROOT)): len(path.read_text().splitlines())
        for package in _PACKAGES
        for path in sorted((_ROOT / package).rglob("*.py"))
        if "_pb2" not in path.name
    }
    assert len(sizes) > 300
    over = {name: lines for name, lines in sizes.items() if lines > _MAX_LINES}
    assert over == {}, f"over {_MAX_LINES} lines (move a cohesive piece into a module of its own): {over}"


def test_the_packages_checked_are_the_ones_the_wheel_ships() -> None:
    # _PACKAGES drives the line limit and the import checks: a package added to the wheel is checked as well
    wheel = tomllib.loads((_ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert sorted(wheel["packages"]) == sorted(_PACKAGES)
