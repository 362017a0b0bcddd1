"""The Alarms page in a real headless Chromium against `uns up` running a rule from its settings file."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from tests.e2e.web_rig import PORTS, open_page, running_hub, skip_without_chromium

pytestmark = skip_without_chromium

FILLER = "acme/dallas/bottling/line1/filler"
SETTINGS = f"""
rules:
  - name: too-hot
    trigger: {{kind: value, topic: {FILLER}/data/Temp, above: 80, hysteresis: 5}}
    actions:
      - {{kind: alarm, path: "${{path}}", name: too-hot, priority: 900, message: "Temp ${{value}} degC"}}
"""


async def test_an_alarm_shows_is_acknowledged_from_the_page_and_clears(tmp_path: Path, browser: Browser) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(SETTINGS)
    args = ["up", "--no-demo", *PORTS, "--config", str(config), "--data-dir", str(tmp_path)]
    with running_hub(args, tmp_path / "hub.log") as url:
        page, errors = await open_page(browser, f"{url}/#alarms")
        await expect(page.locator("#alarm-list")).to_contain_text("No alarms.")
        # the loopback demo's anonymous admin publishes a reading through the UI's publish endpoint
        hot = await page.request.post(
            f"{url}/api/publish", data={"topic": f"{FILLER}/data/Temp", "payload": '{"value": 95}'}
        )
        assert hot.status == 201, await hot.text()
        row = page.locator(f'#alarm-list tr[data-topic="{FILLER}/alarm/too-hot"]')
        await expect(row.locator(".state")).to_have_text("ACTIVE", timeout=15_000)
        await expect(row).to_contain_text("Temp 95 degC")
        await expect(row.locator(".priority")).to_have_text("900")
        await row.locator("button.ack").click()
        await expect(row.locator(".state")).to_have_text("active, acknowledged")
        await expect(row.locator(".acked-by")).to_contain_text("anonymous")
        await expect(row.locator("button.ack")).to_have_count(0)
        back = await page.request.post(
            f"{url}/api/publish", data={"topic": f"{FILLER}/data/Temp", "payload": '{"value": 20}'}
        )
        assert back.status == 201
        await expect(page.locator("#alarm-list")).to_contain_text("No alarms.", timeout=15_000)  # cleared + acked
        history = page.locator("#alarm-history tbody tr")
        await expect(history).to_have_count(3, timeout=15_000)  # raised, acknowledged, normal
        await expect(history.first).to_contain_text("normal, acknowledged")
        assert errors == []
