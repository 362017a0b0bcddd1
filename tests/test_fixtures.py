import itertools
import socket
import time
from pathlib import Path

import pytest

from tests.exports import assert_all_is_honest
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.processes import hub_process
from tests.fixtures.recording import recorder_on
from tests.fixtures.up import hub_up
from tests.fixtures.waiting import eventually, next_json, next_messages, until
from uns.broker import EmbeddedBroker
from uns.connect import network_clients
from uns.errors import ConfigError


def test_mosquitto_listens_on_loopback(mosquitto: Mosquitto) -> None:
    with socket.create_connection(("127.0.0.1", mosquitto.port), timeout=2) as sock:
        # CONNECT, MQTT 3.1.1, clean session, keepalive 10, client id "t"
        sock.sendall(bytes([0x10, 13, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 1]) + b"t")
        assert sock.recv(4) == bytes([0x20, 2, 0, 0])


async def test_a_recorder_keeps_every_message_on_its_filters_in_order(broker: EmbeddedBroker) -> None:
    async with (
        recorder_on(broker.url, ["t/#"]) as seen,
        network_clients(broker.url)(client_id="test-publisher") as publisher,
    ):
        for n in range(3):
            await publisher.publish(f"t/{n}", b"%d" % n, qos=1)
        await publisher.publish("elsewhere", b"0", qos=1)
        await until(lambda: len(seen.messages) == 3, what="three messages")
    assert [m.topic for m in seen.messages] == ["t/0", "t/1", "t/2"]
    assert seen.bodies("t/1") == [1]


def test_recording_exports() -> None:
    assert_all_is_honest("tests.fixtures.recording")


def test_relay_exports() -> None:
    assert_all_is_honest("tests.fixtures.relay")


async def test_a_hub_that_cannot_start_fails_at_once_with_its_own_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        began = time.monotonic()
        with pytest.raises(ConfigError, match="in use"):
            await _enter_hub(tmp_path, taken.getsockname()[1])
    assert time.monotonic() - began < 20  # not the 30 s wait for a ready line that never comes


async def _enter_hub(tmp_path: Path, http_port: int) -> None:
    async with hub_up(tmp_path, {"web.http_port": http_port}):
        raise AssertionError("ready on a port in use")


async def test_waiting_for_messages_takes_the_wanted_one_or_names_what_never_came(broker: EmbeddedBroker) -> None:
    clients = network_clients(broker.url)
    async with clients(client_id="test-waiter") as client, clients(client_id="test-publisher") as publisher:
        await client.subscribe(["w/#"])
        for n in (1, 2, 3):
            await publisher.publish(f"w/{n}", b'{"n": %d}' % n, qos=1)
        assert await next_json(client, lambda body: body["n"] == 2) == {"n": 2}
        assert [m.topic for m in await next_messages(client)] == ["w/3"]
        with pytest.raises(AssertionError, match=r"timed out after 0.2 s waiting for a fourth: 0 of 1"):
            await next_messages(client, within_s=0.2, what="a fourth")


async def test_eventually_gives_the_accepted_answer_or_names_the_last_one() -> None:
    answers = itertools.count()

    async def fetch() -> int:
        return next(answers)

    assert await eventually(fetch, lambda n: n == 3, every_s=0) == 3
    with pytest.raises(AssertionError, match=r"timed out after 0.05 s waiting for never; last: \d+"):
        await eventually(fetch, lambda n: n < 0, within_s=0.05, what="never", every_s=0.01)


def test_a_uns_command_that_never_gets_ready_fails_showing_its_stderr(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(AssertionError, match=r"no ready line \(''\); stderr:\n(.|\n)*missing\.yaml"):
        _enter_process(["up", "--config", str(missing)])


def _enter_process(args: list[str]) -> None:
    with hub_process(args):
        raise AssertionError("ready without its settings file")
