"""``uns up`` runs the settings file's computed tags; SIGHUP reloads them, keeping the running ones when invalid;
``uns transforms check`` shows what a file would change."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.cli import EXIT_CONFIG, main
from tests.fixtures.processes import hub_process
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import Watcher
from uns.clock import now_ms
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl

pytestmark = pytest.mark.timeout(120)  # `uns up` in its own process: its imports alone take 5-20 s on a loaded box

_FILLER = "acme/dallas/bottling/line1/filler"
_OUT = f"{_FILLER}/data/Temperature_degF"
_CONFIG = """
transforms:
  - name: Temperature_degF
    path: {filler}
    expression: "{expression}"
    unit: degF
    inputs:
      t: {{topic: {filler}/data/Temperature, unit: degF}}
"""


def _config(path: Path, expression: str) -> Path:
    path.write_text(_CONFIG.format(filler=_FILLER, expression=expression), encoding="utf-8")
    return path


def _up(config: Path, data_dir: Path) -> AbstractContextManager[tuple[subprocess.Popen[str], dict[str, str]]]:
    args = ["up", "--no-demo", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0"]
    return hub_process([*args, "--config", str(config), "--data-dir", str(data_dir)])


@pytest.mark.parametrize(
    ("demo", "own_tag", "refused"),
    [
        # UNS_DEMO=true beside a plant file without the demo's equipment: the demo's built-in tags read it
        ("true", False, "transforms[Computed/LineSpeed].path: no such equipment in the plant file (got "
         "'acme/dallas/bottling/line1')"),
        # the settings' own tag on a cell the plant file lacks, no demo
        ("false", True, f"transforms[Temperature_degF].path: no such equipment in the plant file (got '{_FILLER}')"),
    ],
)  # fmt: skip
def test_up_refuses_a_tag_on_equipment_the_plant_file_lacks_before_anything_starts(
    demo: str, own_tag: bool, refused: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """As the MES settings are: checked before the broker, the historian's database, the simulated plant and its edge
    nodes start (before, ``uns up`` started them all, then stopped on the tag)."""
    for key in [key for key in os.environ if key.startswith("UNS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("UNS_DEMO", demo)
    plant = tmp_path / "plant.yaml"
    plant.write_text("enterprise:\n  id: acme\n", encoding="utf-8")
    data = tmp_path / "data"
    args = ["up", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--plant", str(plant)]
    args += ["--data-dir", str(data), *(["--config", str(_config(tmp_path / "hub.yaml", "t"))] if own_tag else [])]
    assert main(args) == EXIT_CONFIG
    assert f"uns up: settings: {refused}" in capsys.readouterr().err
    assert not data.exists()  # no database made, no edge node's buffer


def _health(http: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{http}/api/health", timeout=5) as response:  # noqa: S310  (our own 127.0.0.1)
        body: dict[str, Any] = json.loads(response.read())
    transforms: dict[str, Any] = body["transforms"]
    return transforms


def _rows(url: str) -> list[object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  (our own 127.0.0.1)
            return [row["value"] for row in json.loads(response.read())["rows"]]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # no such series until the historian's first write of it
            return []
        raise


def _value(watcher: Watcher) -> object:
    return (watcher.json(_OUT) or {}).get("value")


async def test_up_runs_and_sighup_reloads_the_computed_tags(tmp_path: Path, capsys: Any) -> None:
    config = _config(tmp_path / "hub.yaml", "round(t)")
    with _up(config, tmp_path / "data") as (proc, endpoints):
        watcher = Watcher(endpoints["mqtt"], [_OUT])
        await watcher.start()
        try:
            async with MqttClient(url=BrokerUrl.from_str(endpoints["mqtt"]), client_id="test-plc") as plc:
                stamp = now_ms()
                body = {"value": 37.0, "timestamp_ms": stamp, "quality": "good", "datatype": "Float", "unit": "degC"}
                await plc.publish(f"{_FILLER}/data/Temperature", orjson.dumps(body), qos=1, retain=True)
            await until(lambda: _value(watcher) == 99, within_s=10, what="37 degC as a rounded degF")
            # stored by the historian like any data metric
            history = f"{endpoints['http']}/api/history/raw?topic={_OUT}&start=-5m"
            await until(lambda: _rows(history) == [99], within_s=10, what="the computed value in the historian")
            # an invalid file: refused, counted, the running tag stays
            (tmp_path / "hub.yaml").write_text(_CONFIG.format(filler=_FILLER, expression="t.real"), encoding="utf-8")
            proc.send_signal(signal.SIGHUP)
            await until(lambda: _health(endpoints["http"])["reload_failures"] == 1, within_s=10, what="refused")
            health = _health(endpoints["http"])
            assert "column 1: attribute access" in health["last_reload_error"]
            assert health["computed"][_OUT]["expression"] == "round(t)"
            # `uns transforms check` on the next version: what would change against the running tags
            _config(tmp_path / "next.yaml", "round(t, 1)")
            capsys.readouterr()
            data_dir = str(tmp_path / "data")
            code = main(["transforms", "--data-dir", data_dir, "check", str(tmp_path / "next.yaml"), "--no-demo"])
            assert code == 0
            assert f"~ {_OUT}" in capsys.readouterr().out
            # a valid one is applied without a restart
            _config(tmp_path / "hub.yaml", "round(t, 1)")
            proc.send_signal(signal.SIGHUP)
            await until(lambda: _value(watcher) == 98.6, within_s=10, what="the reloaded expression")
            assert proc.poll() is None
        finally:
            watcher.stop()
