"""Every name in the store's modules' ``__all__`` exists, and the components' schema modules' too."""

from __future__ import annotations

import pytest

from tests.exports import assert_all_is_honest


@pytest.mark.parametrize(
    "module",
    [
        "uns.store",
        "uns.store.database",
        "uns.store.migrations",
        "uns.store.writer",
        "uns.historian.schema",
        "uns.mes.schema",
        "uns.rules.schema",
    ],
)
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module)
