"""`uns bridge http` killed with SIGKILL mid-feed and restarted: every item reaches the Sparkplug host."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import orjson

from tests.bridges.edge.spb_host import SpbHost, until
from tests.bridges.http.rest_api import RestApi
from tests.e2e.crash_rig import kill9, spawn
from tests.fixtures.asgi import serve
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.processes import stop_process

ITEMS = 300
"""Items the API's feed gains: a third before the kill, a third while the bridge is down, a third after."""


def _spawn(config: Path, broker: str, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    args = ["bridge", "http", "--config", str(config), "--broker", broker, "--data-dir", str(data_dir)]
    return spawn(args, log, {"UNS_LOG_LEVEL": "INFO"})


async def test_a_bridge_killed_mid_feed_loses_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    group, host_id = "http-kill", "http-kill-host"
    rest = RestApi()
    rest.paged = []
    host = SpbHost(mosquitto.port, group, host_id)
    await host.start(online=True)
    async with serve(rest.app()) as url:
        config = tmp_path / "uns.yaml"
        config.write_text(
            orjson.dumps(
                {
                    "bridges": [
                        {
                            "kind": "http",
                            "name": "feed",
                            "edge": {"group": group, "primary_host_id": host_id, "first_reading_wait_s": 0.2},
                            "poll": {
                                "url": f"{url}/cursor",
                                "interval_s": 0.05,
                                "items_path": "$.data.items",
                                "pagination": {"kind": "cursor", "cursor_path": "$.next"},
                            },
                            "key_path": "$.id",
                            "devices": [{"id": "feed", "metrics": [{"path": "$.n", "name": "N", "type": "Int64"}]}],
                        }
                    ]
                }
            ).decode()  # JSON is YAML
        )
        log = tmp_path / "bridge.log"
        bridge = _spawn(config, mosquitto.url, tmp_path / "data", log)
        try:

            def seen() -> set[object]:
                return {v for v, _ in host.values("feed", "N", kinds=("DBIRTH", "DDATA"))} - {None}

            await until(lambda: host.count("NBIRTH") == 1, what="the bridge's NBIRTH", within_s=30)
            for n in range(ITEMS):
                if n == ITEMS // 3:  # mid-feed: pages taken, some not yet published, a cursor maybe not saved
                    await asyncio.to_thread(kill9, bridge)
                if n == 2 * ITEMS // 3:
                    bridge = _spawn(config, mosquitto.url, tmp_path / "data", log)
                rest.paged.append({"id": f"i{n}", "n": n})
                await asyncio.sleep(0.005)
            await until(lambda: len(seen()) == ITEMS, what="every item at the host", within_s=40)
            assert seen() == set(range(ITEMS))
            assert host.count("NBIRTH") == 2  # the restart was a new session of the edge node
        finally:
            await asyncio.to_thread(stop_process, bridge, 20)  # the fake API answers in this loop: never block it
            host.stop()
