"""A package's names imported on first use (PEP 562): ``__getattr__ = lazy_names(__name__, homes, globals())``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, homes: Mapping[str, str], namespace: MutableMapping[str, Any]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``.

    A name of ``homes`` (name -> module) is imported from its module when first read and kept in ``namespace``
    (the package's globals), so the next read does not come here; any other name raises ``AttributeError``.
    """

    def load(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    return load
