"""`uns bridge lorawan` killed with SIGKILL mid-stream and restarted: every uplink the broker took reaches the host."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson

from tests.bridges.edge.spb_host import SpbHost, until
from tests.bridges.lorawan import chirpstack as cs
from tests.e2e.crash_rig import kill9, spawn
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.processes import stop_process
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl

SENT = 150
"""Uplinks the network server publishes: a third before the kill, a third while the connector is down, a third after."""
EUI = "70B3D57ED0051A07"


def _spawn(config: Path, broker: str, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    args = ["bridge", "lorawan", "--config", str(config), "--broker", broker, "--data-dir", str(data_dir)]
    return spawn(args, log, {"UNS_LOG_LEVEL": "INFO"})


async def test_a_connector_killed_mid_stream_loses_no_uplink(mosquitto: Mosquitto, tmp_path: Path) -> None:
    group, host_id = "lora-kill", "lora-kill-host"
    config = tmp_path / "uns.yaml"
    bridge_config = {
        "kind": "lorawan",
        "name": "lorakill",
        "edge": {"group": group, "primary_host_id": host_id, "first_reading_wait_s": 0.2},
        "server": {"flavour": "chirpstack", "application_id": cs.APP, "host": "127.0.0.1", "port": mosquitto.port},
        "devices": [{"id": "meter", "dev_eui": EUI, "metrics": [{"path": "$.energy_4", "name": "Energy"}]}],
    }
    config.write_text(orjson.dumps({"bridges": [bridge_config]}).decode())  # JSON is YAML
    host = SpbHost(mosquitto.port, group, host_id)
    await host.start(online=True)
    log = tmp_path / "bridge.log"
    bridge = _spawn(config, mosquitto.url, tmp_path / "data", log)
    try:

        def seen() -> set[object]:
            return {v for v, _ in host.values("meter", "Radio/FCnt", kinds=("DBIRTH", "DDATA"))} - {None}

        await until(lambda: host.count("NBIRTH") == 1, what="the connector's NBIRTH", within_s=30)
        async with MqttClient(url=BrokerUrl.from_str(mosquitto.url), client_id="lora-kill-server") as server:
            for f_cnt in range(1, SENT + 1):
                if f_cnt == SENT // 3:  # mid-stream: some uplinks are still on their way through the connector
                    kill9(bridge)
                if f_cnt == 2 * SENT // 3:
                    bridge = _spawn(config, mosquitto.url, tmp_path / "data", log)
                energy = bytes.fromhex("0483") + (1_000_000 + f_cnt).to_bytes(3, "big")
                await server.publish(cs.topic(EUI, "up"), cs.up(EUI, f_cnt, data=energy), qos=1)
        await until(lambda: len(seen()) == SENT, what="every uplink's frame counter at the host", within_s=40)
        assert seen() == set(range(1, SENT + 1))
        energies = {v for v, _ in host.values("meter", "Energy", kinds=("DBIRTH", "DDATA"))} - {None}
        assert energies == {round((1_000_000 + f) / 100, 2) for f in range(1, SENT + 1)}
        assert host.count("NBIRTH") == 2  # the restart was a new session of the edge node
    finally:
        stop_process(bridge, 20)
        host.stop()
    assert host.violations == []
