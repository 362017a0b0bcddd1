"""Every name in a GPIO source module's ``__all__`` exists, sorted, and the package re-exports only public names."""

from __future__ import annotations

import pytest

from tests.exports import assert_all_is_honest


@pytest.mark.parametrize(
    "module",
    [
        "bridges.gpio",
        "bridges.gpio.chip",
        "bridges.gpio.debounce",
        "bridges.gpio.lines",
        "bridges.gpio.memory",
        "bridges.gpio.source",
        "model.bridges.gpio",
    ],
)
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module, in_order=True)
