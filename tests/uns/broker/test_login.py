"""MQTT login (issue 13.6): equal cost for unknown users, throttling per address and per user, floods bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from model.broker_config import BrokerFileConfig
from tests.fixtures.broker import start_broker
from tests.uns.broker.raw_mqtt import CONNACK_OK, connack, login_answer
from uns.broker.embedded import EmbeddedBroker
from uns.broker.passwords import hash_password

_HASH = hash_password("right")  # argon2 once for the module: both users share it


def _config(**login: object) -> BrokerFileConfig:
    return BrokerFileConfig.model_validate(
        {
            "listeners": {"tcp": {"bind": "127.0.0.1", "port": 0}},
            "users": {"alice": {"password_hash": _HASH, "role": "app"}, "bob": {"password_hash": _HASH, "role": "app"}},
            **({"login": login} if login else {}),
        }
    )


async def test_unknown_and_known_users_cost_one_argon2_check_each(tmp_path: Path) -> None:
    async with start_broker(tmp_path, _config()) as broker:
        assert await login_answer(broker.url, "mallory", "guess") == connack(5)
        assert broker.stats.password_checks == 1  # a dummy hash is verified: no timing tells the user is unknown
        assert await login_answer(broker.url, "alice", "guess") == connack(5)
        assert broker.stats.password_checks == 2
        assert broker.stats.auth_failures == 2


async def test_failures_from_one_address_block_it_even_with_the_right_password(tmp_path: Path) -> None:
    async with start_broker(tmp_path, _config(max_failures_per_address=3, max_failures_per_user=100)) as broker:
        for user in ("u1", "u2", "u3"):  # different users: only the address is common
            assert await login_answer(broker.url, user, "guess") == connack(5)
        assert await login_answer(broker.url, "alice", "right") == connack(5)
        stats = broker.stats
        assert (stats.password_checks, stats.login_throttled) == (3, 1)  # refused without an argon2 check


async def test_failures_for_one_user_block_that_user_from_failing_addresses_only(tmp_path: Path) -> None:
    async with start_broker(tmp_path, _config(max_failures_per_address=100, max_failures_per_user=3)) as broker:
        for _ in range(3):
            assert await login_answer(broker.url, "alice", "guess") == connack(5)
        assert await login_answer(broker.url, "alice", "right") == connack(5)  # this address failed as alice
        assert broker.stats.login_throttled == 1
        assert await login_answer(broker.url, "bob", "right") == CONNACK_OK
        # an address with no failures of its own still gets its check: the flood locks nobody out
        assert await login_answer(broker.url, "alice", "right", local_host="127.0.0.2") == CONNACK_OK
        assert broker.stats.password_checks == 5


async def test_a_good_login_is_remembered_and_skips_argon2_next_time(tmp_path: Path) -> None:
    async with start_broker(tmp_path, _config()) as broker:
        assert await login_answer(broker.url, "alice", "right") == CONNACK_OK
        assert await login_answer(broker.url, "alice", "right") == CONNACK_OK
        stats = broker.stats
        assert (stats.password_checks, stats.login_cache_hits) == (1, 1)
        assert await login_answer(broker.url, "alice", "wrong") == connack(5)  # a wrong password never hits the cache
        assert broker.stats.password_checks == 2


async def _flood(broker: EmbeddedBroker, count: int) -> list[bytes]:
    users = ["alice" if i % 2 else f"m{i}" for i in range(count)]
    return await asyncio.gather(*(login_answer(broker.url, user, "guess") for user in users))


async def test_a_flood_of_bad_logins_leaves_a_good_login_working(tmp_path: Path) -> None:
    config = _config(max_failures_per_address=5, max_concurrent_checks=1)
    async with start_broker(tmp_path, config) as broker:
        flood = asyncio.create_task(_flood(broker, 60))  # half of it guesses alice's password
        # another client address on this machine (127.0.0.0/8 is all loopback)
        assert await login_answer(broker.url, "alice", "right", local_host="127.0.0.2") == CONNACK_OK
        answers = await flood
        assert answers == [connack(5)] * 60
        stats = broker.stats
        assert stats.password_checks <= 5 + 1  # the flood's address was blocked after its first 5 failures
        assert stats.login_throttled >= 60 - 5
