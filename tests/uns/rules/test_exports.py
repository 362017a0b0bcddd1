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
        "uns.rules.cli",
        "uns.rules.conditions",
        "uns.rules.demo",
        "uns.rules.engine",
        "uns.rules.history",
        "uns.rules.service",
        "uns.rules.triggers",
        "uns.web.alarms_api",
    ],
)
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module, in_order=True)
