"""Fixtures shared by the tests of uns/: Mosquitto over TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.tls import tls_mosquitto

__all__ = ["tls_broker"]


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mosquitto, Path]]:
    """Mosquitto over TLS with a certificate of a test CA (self-signed): no system trust store knows it."""
    with tls_mosquitto(tmp_path_factory.mktemp("tls")) as broker:
        yield broker
