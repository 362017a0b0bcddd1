"""``uns up --no-demo`` without a plant file takes its enterprise from settings, and MES intake follows it."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import orjson

from tests.fixtures.processes import hub_process


def test_up_without_a_plant_file_takes_its_enterprise_from_settings(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("UNS_")}
    env |= {"UNS_ENTERPRISE": "globex", "UNS_DATA_DIR": str(tmp_path)}
    argv = ["up", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--no-demo"]
    with hub_process(argv, env=env) as (proc, endpoints):
        http = endpoints["http"]
        body = orjson.dumps({"timestamp_ms": 1_764_000_000_000, "state": 10000})
        ours = httpx.post(f"{http}/api/mes/events/globex/site1/mes/machine_state", content=body, timeout=10)
        assert ours.status_code == 201, ours.text
        acme = httpx.post(f"{http}/api/mes/events/acme/dallas/mes/machine_state", content=body, timeout=10)
        assert acme.status_code == 422, acme.text
        assert acme.json()["detail"] == [
            {"field": "topic", "reason": "enterprise 'acme' is not this hub's ('globex'): publish under globex/..."}
        ]
        health = httpx.get(f"{http}/api/health", timeout=10).json()
        assert health["mes"]["unbound"] == ["globex/site1"]  # the empty plant names no equipment yet
        proc.terminate()
        assert proc.wait(timeout=10) == 0
