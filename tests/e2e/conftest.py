"""Fixtures of the end-to-end tests: the hub as a process and a headless Chromium."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.e2e.web_rig import CHROMIUM, FLAGS, PORTS, accounts, running_hub


@pytest.fixture
def web_hub(tmp_path: Path) -> Iterator[str]:
    """`uns up` with the demo plant; yields its HTTP url."""
    env = {**os.environ, "UNS_MES__KPI_INTERVAL_S": "1", "UNS_HISTORIAN__FLUSH_INTERVAL_S": "0.2"}
    with running_hub(["up", *PORTS, "--data-dir", str(tmp_path)], tmp_path / "hub.log", env) as url:
        yield url


@pytest.fixture
def locked_web_hub(tmp_path: Path) -> Iterator[str]:
    """`uns up --no-demo` with no anonymous access: users vera (viewer) and otto (app)."""
    args = ["up", "--no-demo", *PORTS, "--broker-config", str(accounts(tmp_path)), "--data-dir", str(tmp_path)]
    with running_hub(args, tmp_path / "hub.log") as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()
