"""The Automation page in a real headless Chromium against `uns up`: live values, create with autocomplete, replay,
disable, and a viewer who sees no edit controls."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.web_rig import PORTS, accounts, open_page, running_hub, skip_without_chromium
from uns.clock import now_ms

pytestmark = [skip_without_chromium, pytest.mark.asyncio(loop_scope="module")]  # for module_browser

FILLER = "acme/dallas/bottling/line1/filler"
TEMPERATURE_F = f"{FILLER}/data/Computed/Temperature_degF"  # one of the demo's computed tags
TEMP_K = f"{FILLER}/data/Computed/TempK"
PROBE = f"{FILLER}/data/ProbeTemp"
NEW_TAG = f"name: Computed/TempK\npath: {FILLER}\nexpression: round(t + 273.15, 1)\nunit: K\ninputs:\n  t: "
RULE = f"""name: probe-hot
trigger: {{kind: value, topic: {PROBE}, above: 80, hysteresis: 5}}
actions:
  - {{kind: alarm, path: "${{path}}", name: probe-hot, priority: 700}}
"""


async def _seed(page: Page, url: str, topic: str, readings: list[float]) -> list[int]:
    """Readings an hour old and newer, one a minute, through the UI's publish endpoint; waits for the historian."""
    start = now_ms() - 50 * 60_000
    stamps = [start + i * 60_000 for i in range(len(readings))]
    for value, stamp in zip(readings, stamps, strict=True):
        answer = await page.request.post(
            f"{url}/api/publish",
            data={"topic": topic, "payload": f'{{"value": {value}, "timestamp_ms": {stamp}}}', "qos": 1},
        )
        assert answer.status == 201, await answer.text()
    for _ in range(200):
        raw = await page.request.get(f"{url}/api/history/raw", params={"topic": topic, "start": "-1h", "end": "now"})
        if raw.status == 200 and len((await raw.json())["rows"]) == len(readings):
            return stamps
        await page.wait_for_timeout(100)
    raise AssertionError(f"the {len(readings)} readings never reached the historian")


@pytest.mark.timeout(150)  # the whole demo starts first: ~55 s on a loaded 2-core box (test_uns_process.py)
async def test_live_values_create_with_autocomplete_replay_and_disable(tmp_path: Path, module_browser: Browser) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("# the demo hub's settings: the editor writes below\nhistorian:\n  flush_interval_s: 0.2\n")
    args = ["up", *PORTS, "--config", str(config), "--data-dir", str(tmp_path)]
    with running_hub(args, tmp_path / "hub.log", {**os.environ}) as url:
        page, errors = await open_page(module_browser, f"{url}/#automation")
        # the demo's tag with its live value, quality and time
        demo = page.locator(f'#tag-list tr[data-key="{TEMPERATURE_F}"]')
        await expect(demo.locator(".value")).to_have_text(re.compile(r"^-?\d+(\.\d+)? degF$"), timeout=60_000)
        await expect(demo.locator(".quality")).to_have_text("good")
        await expect(demo.locator(".time")).not_to_have_text("–")

        # a new tag, its input picked from the live tree's topics while typing
        await page.locator("#new-tag").click()
        editor = page.locator("#editor-yaml")
        await editor.fill(NEW_TAG)
        await editor.press("End")
        await editor.press_sequentially("filler/data/Temperat")
        suggestion = page.locator(f'#suggestions li[data-topic="{FILLER}/data/Temperature"]')
        await suggestion.click()
        await expect(editor).to_have_value(NEW_TAG + f"{FILLER}/data/Temperature")
        await page.locator("#editor-save").click()
        await expect(page.locator("#editor-result")).to_contain_text(f"saved and applied: + {TEMP_K}")
        assert "Computed/TempK" in config.read_text()
        assert config.read_text().startswith("# the demo hub's settings: the editor writes below\n")
        created = page.locator(f'#tag-list tr[data-key="{TEMP_K}"]')
        await expect(created.locator(".value")).to_have_text(re.compile(r"^\d+(\.\d+)? K$"), timeout=20_000)

        # a refused change names the field and its line beside the text
        await editor.fill(NEW_TAG + "acme/dallas/bottling/line1/filer/data/Temperature")
        await page.locator("#editor-save").click()
        await expect(page.locator('#editor-problems li[data-field="inputs.t.topic"]')).to_contain_text("line 6")

        # a rule's replay over an hour of seeded history: above 80 three times (86 is within the hysteresis)
        stamps = await _seed(page, url, PROBE, [70, 90, 86, 70, 91, 60, 95, 74])
        await page.locator("#new-rule").click()
        await editor.fill(RULE)
        await page.locator("#replay-hours").fill("1")
        await page.locator("#editor-replay").click()
        summary = page.locator("#editor-result .summary")
        await expect(summary).to_contain_text("This rule would have fired 3 times: at ")
        fired = page.locator("#editor-result li", has_text="fires")
        await expect(fired).to_have_count(3)
        assert stamps[1] < stamps[4] < stamps[6]

        # disabled: shown so, and no longer running
        await created.locator("button.toggle").click()
        await expect(created).to_have_class("disabled")
        await expect(created.locator(".value")).to_have_text("disabled")
        health = await (await page.request.get(f"{url}/api/health")).json()
        assert TEMP_K not in health["transforms"]["computed"]
        assert TEMPERATURE_F in health["transforms"]["computed"]
        assert "enabled: false" in config.read_text()
        # a demo (built-in) tag is disabled by writing it into the file with enabled: false
        await demo.locator("button.toggle").click()
        await expect(demo.locator(".value")).to_have_text("disabled")
        health = await (await page.request.get(f"{url}/api/health")).json()
        assert TEMPERATURE_F not in health["transforms"]["computed"]
        assert "name: Computed/Temperature_degF" in config.read_text()
        assert errors == []


async def test_a_viewer_sees_no_edit_controls_and_is_refused(tmp_path: Path, module_browser: Browser) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(
        f"rules:\n  - name: probe-hot\n    trigger: {{kind: value, topic: {PROBE}, above: 80}}\n"
        f'    actions: [{{kind: alarm, path: "${{path}}", name: probe-hot}}]\n'
    )
    args = ["up", "--no-demo", *PORTS, "--broker-config", str(accounts(tmp_path)), "--config", str(config)]
    with running_hub([*args, "--data-dir", str(tmp_path)], tmp_path / "hub.log") as url:
        page, errors = await open_page(module_browser, f"{url}/login")
        signed = await page.request.post(f"{url}/api/login", data={"username": "vera", "password": "vera-secret"})
        assert signed.status == 200
        await page.goto(f"{url}/#automation")
        row = page.locator('#rule-list tr[data-key="probe-hot"]')
        await expect(row.locator(".fired")).to_have_text("0")
        await expect(page.locator("#new-rule")).to_be_hidden()
        await expect(page.locator("#new-tag")).to_be_hidden()
        await expect(row.locator("button.edit")).to_have_count(0)
        await expect(row.locator("button.toggle")).to_have_count(0)
        await row.locator("button.view").click()
        await expect(page.locator("#editor-yaml")).to_have_value(re.compile(r"^name: probe-hot\n"))
        await expect(page.locator("#editor-yaml")).to_have_attribute("readonly", "")
        for hidden in ("#editor-save", "#editor-test", "#editor-replay", "#editor-delete"):
            await expect(page.locator(hidden)).to_be_hidden()
        refused = await page.request.post(
            f"{url}/api/automation/enable", data={"kind": "rules", "key": "probe-hot", "enabled": False}
        )
        assert refused.status == 403
        assert "enabled" not in config.read_text()
        assert errors == []
