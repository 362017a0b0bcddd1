import pytest

import uns.broker
from tests.exports import assert_all_is_honest

MODULES = [
    "acl",
    "admission",
    "auth",
    "config",
    "core",
    "embedded",
    "framing",
    "local",
    "matcher",
    "packets",
    "passwords",
    "preface",
    "quiet",
    "routing",
    "shared",
    "stats",
    "throttle",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_nothing_public_is_left_out(name: str) -> None:
    assert_all_is_honest(f"uns.broker.{name}")


def test_package_reexports() -> None:
    assert sorted(uns.broker.__all__) == uns.broker.__all__
    for item in uns.broker.__all__:
        assert getattr(uns.broker, item) is not None
