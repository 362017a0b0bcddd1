"""The CA of the hub's own mqtts:// clients: ``broker.ca_file`` (``--broker-ca``, ``UNS_BROKER__CA_FILE``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.waiting import next_json, next_messages
from uns.connect import network_clients
from uns.errors import BrokerUnreachable, ConfigError
from uns.mqtt.types import BrokerUrl
from uns.settings import load_settings


def _tls_url(broker: Mosquitto) -> BrokerUrl:
    return BrokerUrl(scheme="mqtts", host="127.0.0.1", port=broker.port)


async def test_network_clients_trust_the_configured_ca(tls_broker: tuple[Mosquitto, Path]) -> None:
    broker, cert = tls_broker
    async with network_clients(_tls_url(broker), ca_file=cert)(client_id="ca-test") as client:
        await client.subscribe(["ca/#"])
        await client.publish("ca/x", b"trusted", qos=1)
        [message] = await next_messages(client, within_s=10, what="ca/x")
        assert (message.topic, message.payload) == ("ca/x", b"trusted")


async def test_without_the_ca_the_broker_is_untrusted(tls_broker: tuple[Mosquitto, Path]) -> None:
    broker, _ = tls_broker
    with pytest.raises(BrokerUnreachable, match="TLS handshake failed") as caught:
        async with network_clients(_tls_url(broker))(client_id="no-ca"):
            pass
    # the message is every client's: it names the settings that give the CA, not just "the CA"
    assert str(caught.value).endswith(
        "check the CA it trusts (the hub's clients: broker.ca_file, --broker-ca or UNS_BROKER__CA_FILE; "
        "a LoRaWAN bridge's broker: server.ca_file; none set: the system trust store) and that the port speaks TLS"
    )


def test_an_unreadable_ca_file_names_the_setting(tmp_path: Path) -> None:
    url = BrokerUrl(scheme="mqtts", host="127.0.0.1", port=8883)
    with pytest.raises(ConfigError, match=r"broker\.ca_file: cannot load the broker's CA certificates"):
        network_clients(url, ca_file=tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"broker\.ca_file"):
        network_clients(url, ca_file=junk)
    network_clients(BrokerUrl(port=1883), ca_file=tmp_path / "missing.pem")  # plain mqtt:// reads no CA


def test_the_ca_setting_from_env(tmp_path: Path) -> None:
    settings = load_settings(config_file=None, overrides={}, environ={"UNS_BROKER__CA_FILE": str(tmp_path / "ca.pem")})
    assert settings.broker.ca_file == tmp_path / "ca.pem"


async def test_uns_host_trusts_the_broker_ca_flag(tls_broker: tuple[Mosquitto, Path], tmp_path: Path) -> None:
    """A whole component: ``uns host --broker mqtts://... --broker-ca`` comes up and publishes its STATE over TLS."""
    broker, cert = tls_broker
    url = str(_tls_url(broker))
    args = [sys.executable, "-m", "hub.cli", "host", "--broker", url, "--broker-ca", str(cert)]
    args += ["--host-id", "ca-host", "--data-dir", str(tmp_path)]
    env = {key: value for key, value in os.environ.items() if key not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        assert proc.stdout is not None
        ready = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        assert ready.startswith(b"uns-hub ready"), ready
        async with network_clients(_tls_url(broker), ca_file=cert)(client_id="ca-watch") as watcher:
            await watcher.subscribe(["spBv1.0/STATE/ca-host"])
            state = await next_json(watcher, what="the host's STATE")
            assert state["online"] is True
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=10)
