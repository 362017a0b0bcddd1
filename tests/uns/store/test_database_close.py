"""Closing the store waits for reads in progress (a view computed in a thread a cancelled task left running)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from uns.errors import StoreError
from uns.store.database import Database


def _reader(database: Database, inside: threading.Event, go: threading.Event, answer: list[object]) -> None:
    try:
        with database.reading("a slow view") as cursor:
            inside.set()
            go.wait(10)
            answer.append(cursor.execute("SELECT sum(i) FROM range(1000) t(i)").fetchone())
    except StoreError as exc:
        answer.append(exc)


def _refused_within(database: Database, seconds: float) -> None:
    """Wait (bounded) until a new read is refused: ``close`` has begun."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with database.reading("a probe"):
                pass
        except StoreError:
            return
        time.sleep(0.01)
    raise AssertionError(f"reads still accepted {seconds} s after close was called")


def test_close_waits_for_a_read_in_progress_then_refuses_new_ones(tmp_path: Path) -> None:
    database = Database(path=tmp_path / "uns.duckdb")
    database.open()
    inside, go, answer = threading.Event(), threading.Event(), list[object]()
    reader = threading.Thread(target=_reader, args=(database, inside, go, answer))
    reader.start()
    assert inside.wait(10)
    closer = threading.Thread(target=database.close)
    closer.start()
    _refused_within(database, 10)  # close began (a loaded box may take a while to start the thread)
    closer.join(0.3)
    assert closer.is_alive(), "close returned while a read was still in progress"
    with pytest.raises(StoreError, match="not open"), database.reading("a read after close began"):
        pass
    go.set()
    reader.join(10)
    closer.join(10)
    assert not closer.is_alive()
    assert answer == [(499500,)]


def test_a_read_past_the_wait_is_closed_under_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = Database(path=tmp_path / "uns.duckdb")
    database.open()
    inside, go, answer = threading.Event(), threading.Event(), list[object]()
    reader = threading.Thread(target=_reader, args=(database, inside, go, answer))
    reader.start()
    assert inside.wait(10)
    with caplog.at_level(logging.WARNING, logger="uns.store.database"):
        database.close(readers_wait_s=0.1)
    go.set()
    reader.join(10)
    assert "closing with 1 reads still running after 0.1 s" in caplog.text
    assert len(answer) == 1
    assert isinstance(answer[0], StoreError)
