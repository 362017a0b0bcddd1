"""SIGHUP to `uns up` reloads rules: from the --config file with the computed tags (one handler for both)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests.fixtures.processes import hub_process
from tests.fixtures.waiting import until_probed

RULE = """
rules:
  - name: {name}
    trigger: {{kind: value, topic: acme/dallas/bottling/line1/filler/data/Temp, above: 80}}
    actions: [{{kind: alarm, path: "${{path}}", name: hot}}]
"""


async def test_sighup_reloads_the_rules_and_keeps_them_when_the_file_is_invalid(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(RULE.format(name="first"))
    args = ["up", "--no-demo", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0"]
    args += ["--config", str(config), "--data-dir", str(tmp_path / "data")]
    with hub_process(args, log=tmp_path / "hub.log") as (proc, endpoints):
        http = endpoints["http"]
        async with httpx.AsyncClient(base_url=http, timeout=5) as client:
            state: dict[str, object] = {}

            async def names() -> list[str]:
                answer = (await client.get("/api/rules")).json()
                state.update(answer)
                return [rule["name"] for rule in answer["rules"]]

            assert await names() == ["first"]
            config.write_text(RULE.format(name="second"))
            proc.send_signal(signal.SIGHUP)
            seen: list[list[str]] = []

            async def poll() -> bool:
                seen.append(await names())
                return seen[-1] == ["second"]

            await until_probed(poll, what="the reloaded rule")
            config.write_text(RULE.format(name="Not A Slug"))
            proc.send_signal(signal.SIGHUP)

            async def refused() -> bool:
                await names()
                return state.get("reload_failures") == 1

            await until_probed(refused, what="the refused reload")
            assert await names() == ["second"]
            assert "rules[0].name" in str(state["last_reload_error"])
