"""Every name in an HTTP source module's ``__all__`` exists, sorted, and the package re-exports only public names."""

from __future__ import annotations

import pytest

from tests.exports import assert_all_is_honest


@pytest.mark.parametrize(
    "module",
    [
        "bridges.http",
        "bridges.http.auth",
        "bridges.http.dead_letters",
        "bridges.http.headers",
        "bridges.http.mapping",
        "bridges.http.poller",
        "bridges.http.signature",
        "bridges.http.source",
        "bridges.http.state",
        "bridges.http.webhook",
        "bridges.json_paths",
        "bridges.mqtt_json",
        "model.bridges.http",
    ],
)
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module, in_order=True)
