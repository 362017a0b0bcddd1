"""Shared fixtures: real brokers on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.mosquitto import Mosquitto, run_mosquitto

pytest_plugins = ["tests.fixtures.broker", "tests.fixtures.hub", "tests.bridges.sim.fixtures"]


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    """One Mosquitto for the whole session, the reference broker."""
    with run_mosquitto() as broker:
        yield broker


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> str:
    """A topic prefix no other test uses, named after the test."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
    return f"test/{name}"
