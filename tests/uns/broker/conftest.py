"""Until tests/conftest.py lists "tests.fixtures.broker" in pytest_plugins, import the fixture here."""

from tests.fixtures.broker import broker

__all__ = ["broker"]
