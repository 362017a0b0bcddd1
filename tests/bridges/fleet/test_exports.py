"""Every name in a fleet module's ``__all__`` exists; the fleet model's too."""

from __future__ import annotations

import pytest

from tests.exports import assert_all_is_honest


@pytest.mark.parametrize(
    "module",
    [
        "bridges.fleet",
        "bridges.fleet.agent",
        "bridges.fleet.cli",
        "uns.fleet.enrolment",
        "bridges.fleet.bridgeset",
        "uns.fleet.store",
        "uns.fleet.topics",
        "model.fleet",
        "tests.bridges.fleet.rig",
    ],
)
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module)
