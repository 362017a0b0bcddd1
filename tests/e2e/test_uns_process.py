"""`uns up` / `uns host` / `uns broker` as real processes: ready line, signals, exit codes, external broker."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from bridges.sim.utilities import UTILITY_PLANTS
from demo.connectors import CONNECTORS
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.processes import hub_process
from tests.fixtures.waiting import eventually, until
from tests.uns.host.raw_edge import DOUBLE, RawEdgeNode, Watcher, metric


def _uns(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hub.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _running(
    *args: str, env: dict[str, str] | None = None
) -> AbstractContextManager[tuple[subprocess.Popen[str], dict[str, str]]]:
    return hub_process(args, env={**os.environ, **(env or {})})


_FREE = ["--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--no-demo"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_up_prints_every_endpoint_and_stops_cleanly_on_signal(tmp_path: Path, signum: int) -> None:
    with _running("up", *_FREE, "--data-dir", str(tmp_path)) as (proc, endpoints):
        assert endpoints["mqtt"].startswith("mqtt://127.0.0.1:")
        assert endpoints["ws"].startswith("ws://127.0.0.1:")
        assert endpoints["state"] == "spBv1.0/STATE/uns-hub"
        with urllib.request.urlopen(endpoints["http"] + "/api/health", timeout=5) as response:  # noqa: S310
            assert json.loads(response.read())["host"]["nodes_online"] == 0
        started = time.monotonic()
        proc.send_signal(signum)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 2.0


def test_up_env_variables_choose_ports(tmp_path: Path) -> None:
    env = {"UNS_MQTT_PORT": "0", "UNS_WS_PORT": "0", "UNS_HTTP_PORT": "0", "UNS_DATA_DIR": str(tmp_path)}
    env["UNS_DEMO"] = "false"
    with _running("up", env=env) as (proc, endpoints):
        port = int(endpoints["mqtt"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        assert endpoints["data"] == str(tmp_path)
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_output_cut_short_by_its_reader_is_not_a_traceback() -> None:
    # `uns schema | head`: the reader closes the pipe after its lines
    proc = _uns("schema")
    assert proc.stdout is not None
    assert proc.stdout.read(100).startswith("{")
    proc.stdout.close()
    _out, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (1, "")


def test_a_broken_pipe_that_is_not_stdout_is_not_silenced(tmp_path: Path) -> None:
    # stdout is fine; the file the command writes is a FIFO whose reader left: that failure must show, not end
    # the command quietly as a closed `| head` does (exit 1, nothing said, and its summary line lost)
    fifo = tmp_path / "settings.schema.json"  # ~250 KB: more than the pipe holds, so the write meets the close
    os.mkfifo(fifo)
    proc = _uns("schema", "--out", str(tmp_path))

    def open_and_leave() -> None:
        with fifo.open("rb"):  # returns once the command opened it to write
            pass

    reader = threading.Thread(target=open_and_leave, daemon=True)
    reader.start()
    _out, err = proc.communicate(timeout=30)
    reader.join(timeout=5)
    assert (proc.returncode, err.splitlines()[-1:]) == (1, ["BrokenPipeError: [Errno 32] Broken pipe"])


def test_up_refuses_a_port_in_use_and_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _uns("up", "--mqtt-port", str(port), "--ws-port", "0", "--http-port", "0", "--data-dir", str(tmp_path))
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2  # a setting to change, as the web's port (docs/configuration.md, Errors)
    assert f"uns up: broker: broker.mqtt_port: 127.0.0.1:{port} is in use" in err
    assert "--mqtt-port" in err
    assert "Traceback" not in err  # one clear line, not amqtt's stack


def test_up_refuses_an_invalid_config_naming_file_field_and_value(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("broker:\n  mqtt_port: 70000\n")
    proc = _uns("up", "--config", str(config))
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "hub.yaml: broker.mqtt_port" in err
    assert "70000" in err


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["host", "--host-id", "e2e-host"], id="uns-host"),
        pytest.param(["up", "--http-port", "0", "--no-demo", "--host-id", "e2e-up"], id="uns-up"),
    ],
)
async def test_against_mosquitto_republishes(mosquitto: Mosquitto, tmp_path: Path, command: list[str]) -> None:
    group = f"acme-dallas-{command[-1]}"
    with _running(*command, "--broker", mosquitto.url, "--data-dir", str(tmp_path)) as (proc, endpoints):
        assert endpoints["mqtt"] == mosquitto.url
        watcher = Watcher(mosquitto.url, ["acme/#"])
        await watcher.start()
        edge = RawEdgeNode(mosquitto.url, group, "modbus-bottling")
        await edge.start()
        try:
            edge.nbirth([])
            edge.send("DBIRTH", [metric("Temperature", 4.5, DOUBLE)], device="filler")
            topic = f"acme/unbound/{group}/modbus-bottling/filler/data/Temperature"
            await until(lambda: watcher.json(topic) is not None, within_s=10, what=topic)
            envelope = watcher.json(topic)
            assert envelope is not None
            assert envelope["value"] == 4.5
            assert envelope["quality"] == "good"
        finally:
            edge.stop()
            watcher.stop()
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_broker_alone_accepts_mqtt(tmp_path: Path) -> None:
    with _running("broker", "--mqtt-port", "0", "--ws-port", "0", "--data-dir", str(tmp_path)) as (proc, endpoints):
        port = int(endpoints["mqtt"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(bytes([0x10, 13, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 1]) + b"t")
            assert sock.recv(4) == bytes([0x20, 2, 0, 0])
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_schema_command_exports_every_schema(tmp_path: Path) -> None:
    proc = _uns("schema", "--out", str(tmp_path))
    proc.communicate(timeout=20)
    assert proc.returncode == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "plant.schema.json" in names
    assert "envelope.schema.json" in names
    assert "settings.schema.json" in names


async def test_killed_host_goes_offline_by_will_and_a_restart_comes_back(mosquitto: Mosquitto) -> None:
    state_topic = "spBv1.0/STATE/e2e-kill"
    watcher = Watcher(mosquitto.url, [state_topic])
    await watcher.start()
    try:
        with _running("host", "--broker", mosquitto.url, "--host-id", "e2e-kill") as (proc, _endpoints):
            await until(lambda: (watcher.json(state_topic) or {}).get("online") is True, what="online STATE")
            online_at = watcher.json(state_topic)["timestamp"]  # type: ignore[index]
            proc.kill()  # no clean shutdown: only the broker-held will can say we are gone
            proc.wait(timeout=5)
            await until(lambda: (watcher.json(state_topic) or {}).get("online") is False, what="offline by will")
            # Sparkplug 3.0: the will carries the same timestamp as the birth it belongs to
            assert watcher.json(state_topic)["timestamp"] == online_at  # type: ignore[index]
        with _running("host", "--broker", mosquitto.url, "--host-id", "e2e-kill") as (proc, _endpoints):
            await until(lambda: (watcher.json(state_topic) or {}).get("online") is True, what="online again")
            proc.terminate()
            assert proc.wait(timeout=5) == 0
        # a clean stop publishes offline itself
        await until(lambda: (watcher.json(state_topic) or {}).get("online") is False, what="offline on stop")
    finally:
        watcher.stop()


@pytest.mark.timeout(150)  # the whole demo (17 edge nodes, business systems) in one process: 55 s at load 11
async def test_up_runs_the_demo_plant_end_to_end(tmp_path: Path) -> None:
    """Simulated PLCs -> Modbus and OPC UA bridges -> Sparkplug -> host -> live ISA-95 topics; and a clean log."""
    args = ["up", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--data-dir", str(tmp_path)]
    log = tmp_path / "hub.log"
    env = {**os.environ, "UNS_MES__KPI_INTERVAL_S": "1"}
    with hub_process(args, log=log, env=env) as (proc, endpoints):
        # bottling, packaging, LwM2M, LoRaWAN, the pallet scale (serial), one per utility, the business connectors
        assert endpoints["bridges"] == str(5 + len(UTILITY_PLANTS) + len(CONNECTORS))
        watcher = Watcher(endpoints["mqtt"], ["acme/#"])
        await watcher.start()
        try:
            modbus = "acme/dallas/bottling/line1/filler/data/Production/GoodCount"
            opcua = "acme/dallas/packaging/line3/palletizer/data/Production/GoodCount"
            # a DBIRTH sent before the device's first reading carries null values (quality bad) until that reading
            await until(lambda: (watcher.json(modbus) or {}).get("value") is not None, within_s=20, what=modbus)
            await until(lambda: (watcher.json(opcua) or {}).get("value") is not None, within_s=20, what=opcua)
            first = watcher.json(modbus)
            assert first is not None
            assert first["quality"] == "good"
            # live: the counter moves as the simulated filler fills bottles
            await until(
                lambda: (watcher.json(modbus) or {}).get("value") != first["value"], within_s=15, what="a new count"
            )
            temperature = watcher.json("acme/dallas/bottling/line1/filler/data/Temperature")
            assert temperature is not None
            assert temperature["unit"] == "degC"
            health_topic = "acme/hub/host/health"
            nodes = 5 + len(UTILITY_PLANTS) + len(CONNECTORS)  # ... LwM2M, LoRaWAN, serial, utilities, systems
            await until(
                lambda: (watcher.json(health_topic) or {}).get("nodes_online") == nodes,
                within_s=10,
                what="nodes online",
            )
            health = watcher.json(health_topic)
            assert health is not None
            # 9 machines, the LwM2M server and 2 sensors, the LoRaWAN meter and network server, each business
            # connector's status device
            assert health["devices_online"] == 15 + len(UTILITY_PLANTS) + len(CONNECTORS)  # and the pallet scale
            utilities = [f"acme/dallas/utilities/powerhouse/{u.machine}/data/Counters/RunHours" for u in UTILITY_PLANTS]
            live = lambda: all((watcher.json(t) or {}).get("quality") == "good" for t in utilities)  # noqa: E731
            await until(live, within_s=10, what=f"the utilities area live: {utilities}")
            weight = "acme/dallas/packaging/line3/palletizer/data/Weight"  # the serial pallet scale
            await until(lambda: (watcher.json(weight) or {}).get("unit") == "kg", within_s=10, what=weight)
            assert health["rejected"] == {}
            # the historian has it: over the hub's HTTP API, and `uns query` while the hub holds the file
            api = f"{endpoints['http']}/api/history/raw?topic={modbus}&start=-5m"
            counts = await eventually(
                lambda: _good_values(api),
                lambda values: len(values) >= 2,
                within_s=10,
                what="history of the count",
                every_s=0.1,
            )
            assert counts == sorted(counts)  # a production counter only goes up
            line1 = "acme/dallas/bottling/line1/filler/data/#"
            command = [
                "query",
                "--data-dir",
                str(tmp_path),
                "last",
                line1,
                "--api",
                endpoints["http"],
                "--format",
                "json",
            ]
            # the command starts (imports) while the MES checks below wait; its answer is checked after them
            querying = asyncio.create_task(_cli(*command), name="test.uns-query")
            # MES from the bridges alone: derived states and counts, OEE views, KPIs back in the UNS
            line1 = "acme/dallas/bottling/line1"
            await until(
                lambda: (watcher.json(f"{line1}/kpi/oee") or {}).get("value") is not None, within_s=20, what="OEE"
            )
            availability = (watcher.json(f"{line1}/kpi/availability") or {}).get("value")
            assert isinstance(availability, float)
            assert 0 < availability <= 1
            assert watcher.json(f"{line1}/filler/kpi/state_name") is not None
            oee_url = f"{endpoints['http']}/api/mes/oee?path={line1}&by=cell&start=-10m"
            # a cell counts from its counter's second reading on, and the three need not land in one MES commit
            oee = await eventually(
                lambda: _fetch_rows(oee_url),
                lambda rows: sum(row["total"] > 0 for row in rows) == 3,
                within_s=20,
                what="3 cells counted",
                every_s=0.1,
            )
            assert {row["path"] for row in oee} == {f"{line1}/{cell}" for cell in ("filler", "capper", "labeler")}
            # the product's ideal cycle time is a nameplate rate above what any machine runs at
            assert all(0 < row["oee"] <= 1 and row["performance"] <= 1 for row in oee), oee
            mes = await _cli("mes", "orders", "--api", endpoints["http"], "--format", "json")
            assert mes.returncode == 0, mes.stderr
            # the demo's simulated ERP released three orders per line and started one on each
            orders = json.loads(mes.stdout)["rows"]
            running = sorted(row["line"] for row in orders if row["status"] == "running")
            assert running == [line1, "acme/dallas/bottling/line2", "acme/dallas/packaging/line3"], orders
            query = await querying
            assert query.returncode == 0, query.stderr
            last = {row["topic"]: row for row in json.loads(query.stdout)["rows"]}
            assert last[modbus]["value"] >= counts[-1]
        finally:
            watcher.stop()
        proc.terminate()
        assert proc.wait(timeout=5) == 0
    # the demo starts, runs and stops with no warning but the one it must give: a warning a user learns to ignore
    # hides the next real one
    assert _warnings(log.read_text(errors="replace")) == [_ANONYMOUS]


_ANONYMOUS = (
    "WARNING uns.broker.embedded: ANONYMOUS ACCESS IS ON: clients without a password get role admin (loopback only)"
)
"""The demo broker.yaml's anonymous access, said loudly at every start (docs/security.md)."""
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (WARNING|ERROR|CRITICAL)\s+(.*)$", re.MULTILINE)


def _warnings(log: str) -> list[str]:
    """Every WARNING, ERROR and CRITICAL record of a hub's log (``uns.logs``' format), without its time."""
    return [f"{level} {message}" for level, message in _RECORD.findall(log)]


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``uns <args>`` run to its end (30 s at most) in a thread, so the test's loop serves its watcher meanwhile."""
    command = [sys.executable, "-m", "hub.cli", *args]
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=30, check=False)


async def _good_values(url: str) -> list[Any]:
    """The good values of a ``/api/history/raw`` answer, fetched in a thread (a blocking call would stall the loop)."""
    return [row["value"] for row in await _fetch_rows(url) if row["quality"] == "good"]


async def _fetch_rows(url: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await asyncio.to_thread(_get_json, url))["rows"]
    return rows


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  (our own http://127.0.0.1 endpoint)
        body: dict[str, Any] = json.loads(response.read())
    return body


async def test_sim_and_a_bridge_alone_against_mosquitto(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """`uns sim` serves the PLCs; `uns bridge modbus --config` reads one and publishes Sparkplug to Mosquitto."""
    with _running("sim", "--seed", "7") as (sim, endpoints):
        modbus = endpoints["sim"].removeprefix("modbus://")
        host, ports = modbus.split(":", 1)
        port = int(ports.strip("{}").split(",")[0])  # the first bottling PLC: line1 filler
        config = tmp_path / "bridge.yaml"
        config.write_text(
            "bridges:\n"
            "  - kind: modbus\n"
            "    name: lone-modbus\n"
            "    edge: {group: e2e, primary_host_id: null}\n"
            "    devices:\n"
            f"      - {{id: filler, host: {host}, port: {port}, poll_groups: {{fast: 0.2}},\n"
            "         registers: [{name: Production/GoodCount, table: input, address: 4, type: uint32, poll: fast}]}\n"
        )
        watcher = Watcher(mosquitto.url, ["spBv1.0/e2e/#"])
        await watcher.start()
        try:
            args = ["bridge", "modbus", "--config", str(config), "--broker", mosquitto.url, "--data-dir", str(tmp_path)]
            with _running(*args) as (bridge, bridge_endpoints):
                assert bridge_endpoints["bridges"] == "modbus:lone-modbus"
                births = "spBv1.0/e2e/DBIRTH/lone-modbus/filler"
                await until(lambda: births in watcher.last, within_s=10, what=births)
                await until(
                    lambda: "spBv1.0/e2e/DDATA/lone-modbus/filler" in watcher.last, within_s=10, what="live DDATA"
                )
                assert "spBv1.0/e2e/NBIRTH/lone-modbus" in watcher.last
                bridge.terminate()
                assert bridge.wait(timeout=10) == 0
        finally:
            watcher.stop()
        sim.terminate()
        assert sim.wait(timeout=10) == 0
