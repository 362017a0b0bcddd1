"""SIGHUP with nothing to reload: logged and ignored, not the end of the process (the signal's default).

An operator sends SIGHUP to reload; ``uns up --config`` takes it over once ready (``hub.app``) and hands it
back here when its reload stops, so a late ``kill -HUP`` during the stop does not kill the process either.
"""

from __future__ import annotations

import asyncio
import logging
import signal

__all__ = ["ignore_sighup"]

log = logging.getLogger("hub.cli")


def _nothing_to_reload() -> None:
    log.warning(
        "SIGHUP ignored: nothing here reloads on it now (uns up --config reloads transforms: and rules: once ready)"
    )


def ignore_sighup(loop: asyncio.AbstractEventLoop) -> None:
    """Make SIGHUP on ``loop`` log that nothing reloads, instead of ending the process."""
    loop.add_signal_handler(signal.SIGHUP, _nothing_to_reload)
