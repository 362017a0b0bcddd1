"""A command stops cleanly only when SIGINT or SIGTERM asks it to: a cancel from inside is a failure, said."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from hub.cli import _run
from model.config import Settings


async def _cancels_itself() -> None:
    """As a part that lets a cancel out of its own task (a Python 3.11 ``wait_for`` race, a bug) would."""
    await asyncio.sleep(0)
    raise asyncio.CancelledError


async def _signals_itself(signum: int) -> None:
    os.kill(os.getpid(), signum)
    await asyncio.sleep(30)  # cancelled by the signal's handler long before


def test_a_cancel_no_signal_asked_for_fails_naming_where() -> None:
    with pytest.raises(RuntimeError, match="no signal asked it to stop") as failed:
        _run(Settings(), _cancels_itself())
    assert isinstance(failed.value.__cause__, asyncio.CancelledError)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_cleanly(signum: int) -> None:
    _run(Settings(), _signals_itself(signum))  # returns: the command exits 0
