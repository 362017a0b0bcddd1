"""Fixtures of the end-to-end tests: the hub as a process and a headless Chromium."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from tests.e2e.web_rig import CHROMIUM, FLAGS, PORTS, accounts, running_hub


def _demo_hub(data_dir: Path) -> contextlib.AbstractContextManager[str]:
    env = {**os.environ, "UNS_MES__KPI_INTERVAL_S": "1", "UNS_HISTORIAN__FLUSH_INTERVAL_S": "0.2"}
    return running_hub(["up", *PORTS, "--data-dir", str(data_dir)], data_dir / "hub.log", env)


@pytest.fixture
def web_hub(tmp_path: Path) -> Iterator[str]:
    """`uns up` with the demo plant; yields its HTTP url."""
    with _demo_hub(tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def module_web_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`web_hub` shared by the tests of one file (8 s less per test): only for tests that neither need a clean
    hub nor change what another test of the file reads."""
    with _demo_hub(tmp_path_factory.mktemp("hub")) as url:
        yield url


@pytest.fixture
def locked_web_hub(tmp_path: Path) -> Iterator[str]:
    """`uns up --no-demo` with no anonymous access: users vera (viewer) and otto (app)."""
    args = ["up", "--no-demo", *PORTS, "--broker-config", str(accounts(tmp_path)), "--data-dir", str(tmp_path)]
    with running_hub(args, tmp_path / "hub.log") as url:
        yield url


@contextlib.asynccontextmanager
async def _chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with _chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def _module_chromium() -> AsyncIterator[Browser]:
    async with _chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def module_browser(_module_chromium: Browser) -> AsyncIterator[Browser]:
    """`browser` launched once for the tests of one file (~1 s less per test), for a file whose tests run on the
    module's event loop (``pytest.mark.asyncio(loop_scope="module")``). ``browser.new_page`` gives each page a
    context of its own (no shared cookies or storage), and the test's contexts are closed after it."""
    yield _module_chromium
    for context in _module_chromium.contexts:
        await context.close()
