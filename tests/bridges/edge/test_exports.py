"""Every name in an edge module's ``__all__`` exists, and the package re-exports only public names."""

from __future__ import annotations

import pytest

from tests.exports import assert_all_is_honest


@pytest.mark.parametrize(
    "module",
    [
        "bridges.edge",
        "bridges.edge.session",
        "bridges.edge.commands",
        "bridges.edge.wire",
        "bridges.edge.buffer",
        "bridges.edge.backlog",
        "bridges.edge.node",
        "bridges.testing",
    ],
)
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module, in_order=True)
