"""Node-RED (npm node-red, nobody here wrote it) as a subprocess: a temp user dir, loopback only, the example flows."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.fixtures.mosquitto import free_port
from tests.fixtures.requires import PEER_PACKAGES, require

__all__ = ["EXAMPLES", "NodeRed", "example_flows", "running_node_red"]

EXAMPLES = Path(__file__).parents[2] / "examples" / "node-red"

# Loopback only, no editor login prompts, no credentials file, no telemetry or update checks.
_SETTINGS = """module.exports = {
    uiHost: "127.0.0.1",
    uiPort: Number(process.env.NODE_RED_PORT),
    flowFile: process.env.NODE_RED_FLOWS,
    credentialSecret: false,
    flowFilePretty: true,
    diagnostics: { enabled: false, ui: false },
    telemetry: { enabled: false },
    runtimeState: { enabled: false, ui: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    editorTheme: { projects: { enabled: false }, tours: false },
    logging: { console: { level: "info", metrics: false, audit: false } },
};
"""


def example_flows() -> list[dict[str, object]]:
    """Every flow file of examples/node-red, one flows array (their node ids are distinct)."""
    nodes: list[dict[str, object]] = []
    for path in sorted(EXAMPLES.glob("*.json")):
        nodes.extend(json.loads(path.read_text()))
    ids = [str(node["id"]) for node in nodes]
    assert len(ids) == len(set(ids)), f"two example flows share a node id: {sorted(ids)}"
    return nodes


@dataclass(frozen=True)
class NodeRed:
    """Where the running Node-RED answers (its own HTTP endpoints of the flows) and its log file."""

    url: str
    log: Path

    def log_tail(self) -> str:
        """The end of Node-RED's console output, for failure messages."""
        return _tail(self.log)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def _wait_started(url: str, log: Path, process: asyncio.subprocess.Process, within_s: float) -> None:
    # the flows have started when their first HTTP endpoint answers (Node-RED takes ~20 s on a loaded box)
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if process.returncode is not None:
                raise AssertionError(f"node-red exited {process.returncode}: {_tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/uns/alerts")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"node-red not started in {within_s} s: {_tail(log)}")
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def running_node_red(
    flows: list[dict[str, object]],
    env: Mapping[str, str],
    work: Path,
    *,
    credentials: Mapping[str, Mapping[str, str]] | None = None,
    within_s: float = 50.0,
) -> AsyncIterator[NodeRed]:
    """Start Node-RED with ``flows`` (``${VAR}`` properties from ``env``) in ``work``; stopped with SIGTERM on exit.

    ``credentials`` (node id -> ``{"user", "password"}``) is what the editor's broker dialog would store: with
    ``credentialSecret: false`` Node-RED reads it as plain JSON from ``flows_cred.json`` beside the flows.
    """
    node = require("node")
    require("peer-packages")
    user_dir = work / "node-red"
    user_dir.mkdir()
    (user_dir / "settings.js").write_text(_SETTINGS)
    flow_file = user_dir / "flows.json"
    flow_file.write_text(json.dumps(flows))
    (user_dir / "flows_cred.json").write_text(json.dumps(credentials or {}))
    port = free_port()
    log = work / "node-red.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            node,
            str(Path(PEER_PACKAGES) / "node_modules" / "node-red" / "red.js"),
            "--settings",
            str(user_dir / "settings.js"),
            "--userDir",
            str(user_dir),
            cwd=user_dir,
            env={**os.environ, **env, "NODE_RED_PORT": str(port), "NODE_RED_FLOWS": str(flow_file)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_started(url, log, process, within_s)
        yield NodeRed(url, log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
