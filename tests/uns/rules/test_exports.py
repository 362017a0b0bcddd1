"""Every rules module's ``__all__`` is honest and sorted."""

from __future__ import annotations

import pytest

from tests.exports import assert_all_is_honest


@pytest.mark.parametrize(
    "module",
    [
        "model.rules",
        "uns.rules",
        "uns.rules.actions",
        "uns.rules.alarms",
        "uns.rules.check",
        "uns.rules.conditions",
        "uns.rules.engine",
        "uns.rules.triggers",
    ],
)
def test_all_is_honest(module: str) -> None:
    mod = assert_all_is_honest(module)
    assert mod.__all__ == sorted(mod.__all__, key=lambda n: (not n.isupper(), n))
