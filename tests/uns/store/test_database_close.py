"""Closing the store waits for reads in progress (a view computed in a thread a cancelled task left running)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

import duckdb
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


def _one_read_in_progress(path: Path) -> tuple[Database, threading.Event, list[object], threading.Thread]:
    """An open store with one ``_reader`` inside its read, held there until the returned event is set."""
    database = Database(path=path)
    database.open()
    inside, go, answer = threading.Event(), threading.Event(), list[object]()
    reader = threading.Thread(target=_reader, args=(database, inside, go, answer))
    reader.start()
    assert inside.wait(10)
    return database, go, answer, reader


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
    database, go, answer, reader = _one_read_in_progress(tmp_path / "uns.duckdb")
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
    database, go, answer, reader = _one_read_in_progress(tmp_path / "uns.duckdb")
    with caplog.at_level(logging.WARNING, logger="uns.store.database"):
        database.close(readers_wait_s=0.1)
    go.set()
    reader.join(10)
    assert "1 reads still running after 0.1 s: interrupting them" in caplog.text
    assert len(answer) == 1
    assert isinstance(answer[0], StoreError)


def test_a_query_running_past_the_wait_is_interrupted_and_the_file_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """DuckDB refuses to close a connection whose cursor is running a query: close interrupts it instead."""
    path = tmp_path / "uns.duckdb"
    database = Database(path=path)
    database.open()
    inside, cursors, answer = threading.Event(), list[duckdb.DuckDBPyConnection](), list[object]()

    def endless_read() -> None:
        try:
            with database.reading("an endless view") as cursor:
                cursors.append(cursor)
                inside.set()
                answer.append(cursor.execute("SELECT sum(a % 7) FROM range(1000000000000) t(a)").fetchone())
        except StoreError as exc:
            answer.append(exc)

    reader = threading.Thread(target=endless_read)
    reader.start()
    try:
        assert inside.wait(10)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="uns.store.database"):
            database.close(readers_wait_s=0.2)  # was: ResourceInUseException, the file left open
        assert time.monotonic() - started < 10
        reader.join(10)
        assert not reader.is_alive()
    finally:
        for cursor in cursors:  # whatever close did, no query left running on the shared box
            with contextlib.suppress(duckdb.Error):
                cursor.interrupt()
        reader.join(10)
    assert len(answer) == 1
    assert isinstance(answer[0], StoreError)
    assert "Interrupted" in str(answer[0])
    with Database(path=path) as again:  # closed and checkpointed: the file opens again
        assert again.connection.execute("SELECT 1").fetchone() == (1,)
