"""One check of a module's ``__all__``, shared by the packages' export tests."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["assert_all_is_honest"]


def assert_all_is_honest(name: str, *, in_order: bool = False) -> ModuleType:
    """``name.__all__`` lists each name once, only public names that exist, and every public class,
    function or other object defined in the module itself; returns the module for further checks.

    ``in_order``: also in ruff's RUF022 order (CONSTANTS first, then the rest by name).
    """
    module = importlib.import_module(name)
    names = module.__all__
    assert len(names) == len(set(names)), f"{name}.__all__ lists a name twice"
    if in_order:
        assert names == sorted(names, key=lambda n: (not n.isupper(), n)), f"{name}.__all__ out of order"
    for item in names:
        assert not item.startswith("_"), f"{name}.__all__ lists private {item}"
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"
    defined_here = {
        key
        for key, value in vars(module).items()
        if not key.startswith("_") and getattr(value, "__module__", None) == name
    }
    assert defined_here <= set(names), f"{name}: public but not in __all__: {defined_here - set(names)}"
    return module
