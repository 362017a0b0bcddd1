"""Regenerate docs/screenshots/*.png: `uv run python scripts/screenshots.py` (needs Debian's chromium)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
LINE = "acme/dallas/bottling/line1"
FILLER = f"{LINE}/filler"
TOPIC = f"{FILLER}/data/Temperature"


async def shoot(url: str) -> None:
    """Open the hub's pages in headless Chromium and save one PNG each."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        await page.goto(url + "/")  # the landing page: the plant
        await page.locator(f'.machine[data-path="{FILLER}"]').click()
        await page.wait_for_timeout(2000)
        await page.screenshot(path=OUT / "plant.png", full_page=True)
        await page.goto(f"{url}/#topics?topic={TOPIC}")
        await page.wait_for_selector("#chart svg polyline")
        await page.get_by_role("button", name="15 min").click()
        await page.wait_for_timeout(1000)
        await page.screenshot(path=OUT / "topics.png")
        await page.goto(f"{url}/#sparkplug")
        await page.reload()
        await page.wait_for_timeout(2000)
        await page.screenshot(path=OUT / "sparkplug.png", full_page=True)
        await page.goto(f"{url}/#mes?line={LINE}&range=1h")
        await page.reload()
        await page.wait_for_timeout(3000)
        await page.screenshot(path=OUT / "mes.png", full_page=True)
        lots = await page.evaluate("fetch('/api/mes/lots?q=PAL&limit=1').then(r => r.json())")
        lot = lots["rows"][0]["lot_id"] if lots["rows"] else ""
        await page.goto(f"{url}/#mes?line={LINE}&cell={FILLER}&range=1h&char=fill_volume_ml&lot={lot}")
        await page.reload()
        await page.wait_for_timeout(3000)
        await page.locator(".panel", has=page.locator("#spc")).screenshot(path=OUT / "spc.png")
        await page.locator("#genealogy").screenshot(path=OUT / "genealogy.png")
        await browser.close()


def main() -> None:
    """Run the demo hub for a while, then take the screenshots."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        args = ["up", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--data-dir", data]
        command = [sys.executable, "-m", "hub.cli", *args]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603  (our own CLI)
        try:
            ready = proc.stdout.readline() if proc.stdout else ""
            url = dict(part.split("=", 1) for part in ready.split() if "=" in part)["http"]
            print(f"hub at {url}; letting the demo plant run 120 s for some history", flush=True)
            asyncio.run(asyncio.sleep(120))
            asyncio.run(shoot(url))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.png')))} to {OUT}")


if __name__ == "__main__":
    main()
