"""Every name in an edge module's ``__all__`` exists, and the package re-exports only public names."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "module", ["bridges.edge", "bridges.edge.session", "bridges.edge.buffer", "bridges.edge.node", "bridges.testing"]
)
def test_all_is_honest(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == sorted(mod.__all__, key=lambda n: (not n.isupper(), n))
    for name in mod.__all__:
        assert not name.startswith("_")
        assert hasattr(mod, name), f"{module}.{name}"
