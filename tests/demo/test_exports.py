"""Every module of the demo package keeps an honest ``__all__``."""

from __future__ import annotations

import pkgutil

import pytest

import demo
from tests.exports import assert_all_is_honest

MODULES = sorted(f"demo.{info.name}" for info in pkgutil.iter_modules(demo.__path__))


def test_the_package_has_its_modules() -> None:
    assert {"demo.erp", "demo.qms", "demo.cmms", "demo.connectors", "demo.business"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_exports(name: str) -> None:
    assert_all_is_honest(name)
