"""Runtime accounts of the embedded broker: an agent enrolled by one-time token, then revoked, with no restart."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from model.fleet import enrolment_password
from tests.exports import assert_all_is_honest
from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.waiting import until
from uns.broker.embedded import EmbeddedBroker
from uns.broker.passwords import hash_password
from uns.errors import BrokerError, ConfigError
from uns.fleet.enrolment import account_of, accounts_file, enrol, revoke
from uns.fleet.store import FleetStore
from uns.mqtt.client import MqttClient
from uns.mqtt.types import Message

_ADMIN = {"password_hash": hash_password("adminpw"), "role": "admin"}


@pytest.fixture
async def closed_broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    """A broker with no anonymous access and one admin account in broker.yaml."""
    config = broker_test_config(allow_anonymous=False, users={"admin": _ADMIN})
    async with start_broker(tmp_path, config) as running:
        yield running


def _store(broker: EmbeddedBroker) -> FleetStore:
    return FleetStore(directory=broker.data_dir / "fleet")


def _client(broker: EmbeddedBroker, user: str, password: str, **options: object) -> MqttClient:
    url = broker.url.with_credentials(user, password)
    return MqttClient(url=url, client_id=f"t-{user}-{len(password)}", reconnect=False, **options)  # type: ignore[arg-type]


async def _refused(broker: EmbeddedBroker, user: str, password: str) -> str:
    with pytest.raises(BrokerError) as caught:
        async with _client(broker, user, password):
            pass
    return str(caught.value)


async def test_a_token_enrols_an_agent_once_and_its_own_password_logs_in_after(
    closed_broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = _store(closed_broker)
    token = enrol(store, "line1", {"site": "dallas"}, edge_nodes=["fleet/press1"])
    assert account_of(store, "line1").state == "pending"
    async with _client(closed_broker, "line1", enrolment_password(token, "own-secret")) as client:
        # the account is the agent's: its status and its edge node, nothing else
        await client.publish("acme/hub/edge/line1/status", b"{}", qos=1)
        await client.publish("acme/hub/edge/line2/status", b"{}", qos=1)
    assert account_of(store, "line1").state == "enrolled"
    assert store.labels("line1") == {"site": "dallas"}
    async with _client(closed_broker, "line1", "own-secret"):
        pass
    # single use: the same token with another password is refused; a wrong password too
    assert "not authorized" in await _refused(closed_broker, "line1", enrolment_password(token, "thief"))
    assert "not authorized" in await _refused(closed_broker, "line1", "thief")
    saved = accounts_file(store).read_text()
    assert token not in saved
    assert "own-secret" not in saved
    assert json.loads(saved)["accounts"]["line1"]["edge_agent"] == "line1"
    assert stat.S_IMODE(accounts_file(store).stat().st_mode) == 0o600
    assert closed_broker.stats.acl_denial_reasons == {"not-own-edge-node": 1}
    assert all(token not in record.getMessage() for record in caplog.records)  # tokens are never logged


async def test_a_wrong_or_expired_token_is_refused_and_counted(closed_broker: EmbeddedBroker) -> None:
    store = _store(closed_broker)
    token = enrol(store, "line2")
    assert "not authorized" in await _refused(closed_broker, "line2", enrolment_password("x" + token, "pw"))
    assert "not authorized" in await _refused(closed_broker, "line9", enrolment_password(token, "pw"))
    expired = enrol(store, "line3", ttl_s=0.001)
    await asyncio.sleep(0.01)
    assert "not authorized" in await _refused(closed_broker, "line3", enrolment_password(expired, "pw"))
    assert closed_broker.stats.auth_failures == 3
    assert account_of(store, "line2").state == "pending"  # a wrong guess does not burn the real token
    async with _client(closed_broker, "line2", enrolment_password(token, "pw")):
        pass


async def test_a_revoked_agent_is_dropped_and_refused_without_a_restart(closed_broker: EmbeddedBroker) -> None:
    store = _store(closed_broker)
    token = enrol(store, "line4")
    async with _client(closed_broker, "line4", enrolment_password(token, "pw")):
        pass
    gone: list[Message] = []
    will = Message(topic="acme/hub/edge/line4/status", payload=b'{"status": "offline"}', qos=1, retain=False)
    async with MqttClient(url=closed_broker.url.with_credentials("admin", "adminpw"), client_id="watch") as admin:
        await admin.subscribe(["acme/hub/edge/+/status"], qos=1)

        async def watch() -> None:
            async for message in admin.messages():
                gone.append(message)

        watcher = asyncio.create_task(watch(), name="test.watch")
        agent = _client(closed_broker, "line4", "pw", will=will)
        async with agent:
            assert revoke(store, "line4").state == "revoked"
            await until(lambda: gone, within_s=5, what="the revoked agent's connection dropped (its will)")
        watcher.cancel()
    assert "not authorized" in await _refused(closed_broker, "line4", "pw")
    assert account_of(store, "line4").state == "revoked"
    # enrolled again with a new token, it is admitted again
    again = enrol(store, "line4")
    async with _client(closed_broker, "line4", enrolment_password(again, "pw2")):
        pass
    assert account_of(store, "line4").state == "enrolled"


def test_revoking_an_agent_never_enrolled_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such enrolled agent \\(got 'line5'\\)"):
        revoke(FleetStore(directory=tmp_path / "fleet"), "line5")


def test_the_accounts_module_exports_what_it_says() -> None:
    assert_all_is_honest("uns.broker.accounts")


async def test_guessing_a_token_is_throttled_like_any_login(tmp_path: Path) -> None:
    # a long block, so a slow box cannot see it end between the guesses and the last try
    login = {"block_s": 60.0, "max_block_s": 60.0}
    config = broker_test_config(allow_anonymous=False, users={"admin": _ADMIN}, login=login)
    async with start_broker(tmp_path, config) as broker:
        store = _store(broker)
        token = enrol(store, "line6")
        for guess in range(5):  # login.max_failures_per_user: 5
            await _refused(broker, "line6", enrolment_password(f"guess{guess}", "pw"))
        checks = broker.stats.password_checks
        # from now on this address is refused for line6 without a check, even with the right token
        assert "not authorized" in await _refused(broker, "line6", enrolment_password(token, "pw"))
        assert broker.stats.login_throttled == 1
        assert broker.stats.password_checks == checks
        assert account_of(store, "line6").state == "pending"
