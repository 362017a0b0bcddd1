"""The network server's own broker over TLS with a user name and password (Mosquitto), the Sparkplug side elsewhere."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from bridges.lorawan import make_source
from model.bridges.lorawan import LorawanBridgeConfig
from tests.bridges.edge.spb_host import SpbHost, until
from tests.bridges.lorawan import chirpstack as cs
from tests.bridges.lorawan.running import last, running
from tests.fixtures.mosquitto import readable_by_mosquitto, run_mosquitto
from tests.fixtures.requires import require
from tests.fixtures.tls import self_signed_cert
from uns.broker import EmbeddedBroker
from uns.connect import network_clients
from uns.errors import UnsError
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl

EUI = "70B3D57ED0051A0B"


def _config(port: int, cert: Path, password: str) -> LorawanBridgeConfig:
    return LorawanBridgeConfig.model_validate(
        {
            "name": "lora-tls",
            "edge": {"group": "env-tls", "primary_host_id": "lora-tls-host", "first_reading_wait_s": 0.2},
            "server": {"flavour": "chirpstack", "application_id": cs.APP, "host": "127.0.0.1", "port": port,
                       "tls": True, "ca_file": str(cert), "username": "lns", "password": password},
            "devices": [{"id": "meter", "dev_eui": EUI, "metrics": [{"path": "$.energy_4", "name": "Energy"}]}],
        }
    )  # fmt: skip


def _broker_files(workdir: Path) -> tuple[Path, str]:
    """A certificate for 127.0.0.1 and a password file with user lns; returns the certificate and Mosquitto's config."""
    cert, key = self_signed_cert(workdir)
    passwords = workdir / "passwd"
    subprocess.run([require("mosquitto_passwd"), "-b", "-c", str(passwords), "lns", "s3cret"], check=True)
    readable_by_mosquitto(workdir, cert, key, passwords)
    return cert, f"certfile {cert}\nkeyfile {key}\nallow_anonymous false\npassword_file {passwords}\n"


async def test_tls_and_a_password_to_the_integration_s_broker(broker: EmbeddedBroker, tmp_path: Path) -> None:
    cert, extra = _broker_files(tmp_path)
    host = SpbHost(broker.url.port, "env-tls", "lora-tls-host")
    await host.start(online=True)
    try:
        with run_mosquitto(extra) as lns:
            # a wrong password is refused at the start, and never shown
            refused = make_source(_config(lns.port, cert, "wrong-pw"), network_clients(broker.url))
            with pytest.raises(UnsError) as caught:
                async with refused:
                    pass
            assert "not authorized" in str(caught.value)
            assert "wrong-pw" not in str(caught.value)
            # the broker's certificate is checked: without its CA the system trust store refuses it
            unknown = _config(lns.port, cert, "s3cret").server.model_copy(update={"ca_file": None})
            untrusted = make_source(
                _config(lns.port, cert, "s3cret").model_copy(update={"server": unknown}), network_clients(broker.url)
            )
            with pytest.raises(UnsError, match="TLS handshake failed"):
                async with untrusted:
                    pass
            url = BrokerUrl(scheme="mqtts", port=lns.port, username="lns", password="s3cret")  # noqa: S106  (the test's)
            context = ssl.create_default_context(cafile=str(cert))
            async with (
                running(_config(lns.port, cert, "s3cret"), broker.url.port, tmp_path),
                MqttClient(url=url, client_id="chirpstack-tls", ssl_context=context) as server,
            ):
                await until(lambda: host.of("DBIRTH", "meter"), what="the meter's DBIRTH")
                uplink = cs.up(EUI, 1, data=bytes.fromhex("048301E240"))  # 1234.56 kWh
                await server.publish(cs.topic(EUI, "up"), uplink, qos=1)
                await until(lambda: last(host, "meter", "Energy") == 1234.56, what="the uplink through TLS")
    finally:
        host.stop()
    assert host.violations == []
