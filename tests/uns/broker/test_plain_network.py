"""A plain (not TLS) listener bound beyond loopback is warned about at start: passwords would cross the network."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.passwords import quick_hash


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "uns.broker.embedded" and r.levelno == logging.WARNING]


async def test_plain_listener_on_the_network_is_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = broker_test_config(
        listeners={"tcp": {"bind": "0.0.0.0", "port": 0}, "ws": {"bind": "127.0.0.1", "port": 0}},  # noqa: S104
        allow_anonymous=False,
        users={"bob": {"password_hash": quick_hash("pw"), "role": "viewer"}},
    )
    with caplog.at_level(logging.INFO, logger="uns.broker.embedded"):
        async with start_broker(tmp_path, config):
            pass
    assert _warnings(caplog) == [
        "PLAIN MQTT ON THE NETWORK (0.0.0.0): user names and passwords cross it in clear text; "
        "add a tls listener to broker.yaml and bind this one to 127.0.0.1"
    ]


async def test_loopback_listeners_are_not_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = broker_test_config(
        listeners={"tcp": {"port": 0}, "ws": {"port": 0}},
        allow_anonymous=False,
        users={"bob": {"password_hash": quick_hash("pw"), "role": "viewer"}},
    )
    with caplog.at_level(logging.INFO, logger="uns.broker.embedded"):
        async with start_broker(tmp_path, config):
            pass
    assert _warnings(caplog) == []
