"""The browser rig of the web UI tests: `uns up` as a process, Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.fixtures.passwords import quick_hash
from tests.fixtures.processes import hub_process
from tests.fixtures.requires import COMPONENTS

__all__ = [
    "CHROMIUM",
    "FLAGS",
    "PORTS",
    "accounts",
    "hub_endpoints",
    "open_page",
    "running_hub",
    "skip_without_chromium",
    "watch_errors",
]

CHROMIUM = COMPONENTS["chromium"].find() or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",  # the machine's network is closed: no update or sync calls
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
skip_without_chromium = pytest.mark.requires("chromium")  # skips naming the install (tests/fixtures/requires.py)


@contextlib.contextmanager
def running_hub(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``uns <args>`` as a process; yields its HTTP url from the ready line."""
    with hub_endpoints(args, log_path, env) as endpoints:
        yield endpoints["http"]


@contextlib.contextmanager
def hub_endpoints(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """``uns <args>`` as a process; yields its ready line's ``name=value`` endpoints (http, mqtt, ...)."""
    with hub_process(args, log=log_path, env=env) as (_, endpoints):
        yield endpoints


PORTS = ["--mqtt-port", "0", "--ws-port", "0", "--http-port", "0"]


def watch_errors(page: Page) -> list[str]:
    """Page errors and Content-Security-Policy violations (Chromium reports those on the console) as they come."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console", lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None
    )
    return errors


async def open_page(browser: Browser, url: str) -> tuple[Page, list[str]]:
    page = await browser.new_page(viewport={"width": 1300, "height": 900})
    errors = watch_errors(page)
    await page.goto(url)
    return page, errors


@functools.cache
def _users() -> str:
    """The rig's users block, one set per process: argon2id at its lowest cost (quick_hash), which the hub verifies
    as it does `uns passwd`'s hashes, at ~5 ms a login instead of 0.2-0.6 s (and as much again for each hash)."""
    return (
        f'users:\n  vera: {{password_hash: "{quick_hash("vera-secret")}", role: viewer}}\n'
        f'  otto: {{password_hash: "{quick_hash("otto-secret")}", role: app}}\n'
        f'  hana: {{password_hash: "{quick_hash("hana-secret")}", role: host}}\n'
    )


def accounts(tmp_path: Path) -> Path:
    """A broker.yaml with no anonymous access: users vera (viewer), otto (app) and hana (host)."""
    text = (Path(__file__).parents[2] / "broker.yaml").read_text()
    text = text.replace("allow_anonymous: true", "allow_anonymous: false").replace("users: {}\n", _users())
    path = tmp_path / "broker.yaml"
    path.write_text(text)
    return path
