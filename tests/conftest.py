"""Shared fixtures: real brokers on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.bytecode import cache_bytecode

# before the xdist workers start: they and every process a test starts inherit the environment
cache_bytecode(Path(__file__).parents[1] / ".pytest_cache" / "pycache")

if TYPE_CHECKING:  # imported in the fixture: the plugins below (requires.py first) must load before it
    from tests.fixtures.mosquitto import Mosquitto

pytest_plugins = [
    "pytester",  # tests/test_requires.py runs pytest on small test files
    "tests.fixtures.requires",  # require() / @pytest.mark.requires: skip naming the install, fail in strict mode
    "tests.fixtures.broker",
    "tests.fixtures.hub",
    "tests.fixtures.store",  # migrated_database: one migrated hub database file per session, copied per test
    "tests.bridges.sim.fixtures",
    "tests.fixtures.rabbitmq",  # rabbitmq: one throwaway RabbitMQ node per session (AMQP source and sink)
]


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    """One Mosquitto for the whole session, the reference broker."""
    from tests.fixtures.mosquitto import run_mosquitto

    with run_mosquitto() as broker:
        yield broker


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> str:
    """A topic prefix no other test uses, named after the test."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
    return f"test/{name}"
