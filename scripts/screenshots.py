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
TOPIC = "acme/dallas/bottling/line1/filler/data/Temperature"


async def shoot(url: str) -> None:
    """Open the hub's pages in headless Chromium and save one PNG each."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        await page.goto(url + "/")
        await page.wait_for_selector("#tree li")
        for name in ("acme", "dallas", "bottling", "line1", "filler", "data"):
            await page.locator(f'#tree li .name:text-is("{name}")').first.click()
            await page.wait_for_timeout(300)
        await page.locator(f'#tree li[data-path="{TOPIC}"] .name').click()
        await page.get_by_role("button", name="15 min").click()
        await page.wait_for_selector("#chart svg polyline")
        await page.screenshot(path=OUT / "topics.png")
        for tab in ("sparkplug", "mes"):
            await page.goto(f"{url}/#{tab}")
            await page.reload()
            await page.wait_for_timeout(1500)
            await page.screenshot(path=OUT / f"{tab}.png", full_page=True)
        await browser.close()


def main() -> None:
    """Run the demo hub for a while, then take the screenshots."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        args = ["up", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--data-dir", data]
        command = [sys.executable, "-m", "uns.cli", *args]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603  (our own CLI)
        try:
            ready = proc.stdout.readline() if proc.stdout else ""
            url = dict(part.split("=", 1) for part in ready.split() if "=" in part)["http"]
            print(f"hub at {url}; letting the demo plant run 90 s for some history", flush=True)
            asyncio.run(asyncio.sleep(90))
            asyncio.run(shoot(url))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.png')))} to {OUT}")


if __name__ == "__main__":
    main()
