import asyncio
import ctypes

import pytest

from tests.fixtures.waiting import until
from uns.memory import HeapKeeper, limit_arenas


def _glibc() -> bool:
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "malloc_trim")
    except OSError:
        return False


@pytest.mark.skipif(not _glibc(), reason="glibc only: elsewhere both are no-ops by design")
def test_arenas_are_capped_unless_the_operator_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_arenas() is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas() is False  # glibc read the operator's value at start; we leave it


@pytest.mark.skipif(not _glibc(), reason="glibc only: elsewhere both are no-ops by design")
async def test_the_heap_keeper_trims_on_its_interval_until_cancelled() -> None:
    keeper = HeapKeeper(every_s=0.01)
    task = asyncio.create_task(keeper.run())
    await until(lambda: keeper.trims >= 3, within_s=10, what="three trims")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert keeper.trims >= 3
    assert keeper.last_trim_ms >= 0.0
