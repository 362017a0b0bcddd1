import importlib

import pytest

import uns.broker

MODULES = ["acl", "auth", "config", "core", "embedded", "framing", "local", "matcher", "passwords", "stats"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_nothing_public_is_left_out(name: str) -> None:
    module = importlib.import_module(f"uns.broker.{name}")
    assert all(hasattr(module, item) for item in module.__all__)
    defined_here = {
        key
        for key, value in vars(module).items()
        if not key.startswith("_") and getattr(value, "__module__", None) == module.__name__
    }
    assert defined_here <= set(module.__all__)


def test_package_reexports() -> None:
    assert sorted(uns.broker.__all__) == uns.broker.__all__
    for item in uns.broker.__all__:
        assert getattr(uns.broker, item) is not None
