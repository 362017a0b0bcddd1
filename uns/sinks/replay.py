"""``uns sink <name> dead-letters | replay``: list a REST or SQL insert sink's stored dead letters, send them again."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC

from model.config import Settings
from model.sinks import RestSinkConfig, SqlInsertSinkConfig
from uns.clock import at_epoch_ms, epoch_ms, utc_now
from uns.errors import ConfigError
from uns.query.timespec import parse_time
from uns.sinks.dead_letters import DeadLetters
from uns.sinks.rest import RestWriter
from uns.sinks.run import sink_config
from uns.sinks.sql_insert import SqlInsertWriter

__all__ = ["list_dead_letters", "replay_dead_letters", "run_sink_action"]

_PAYLOAD_SHOWN = 120


def _writer(settings: Settings, name: str) -> RestWriter | SqlInsertWriter:
    config = sink_config(settings, name)
    if isinstance(config, SqlInsertSinkConfig):
        return SqlInsertWriter(config=config)
    if not isinstance(config, RestSinkConfig):
        raise ConfigError(
            source="settings", path="sinks", value=name, reason=f"kind {config.kind} keeps its dead letters in its "
            "target (postgres: table dead_letters); replay is for kinds rest and sql_insert",
        )  # fmt: skip
    return RestWriter(config=config)


def _since_ms(since: str | None) -> int:
    if not since:
        return 0
    return epoch_ms(parse_time(since, now=utc_now(), tz=UTC, field="--since"))


def list_dead_letters(dead_letters: DeadLetters, *, since: str | None) -> list[str]:
    """One line per stored dead letter: id, time, topic, field, replays, reason, payload excerpt."""
    letters = dead_letters.list(since_ms=_since_ms(since))
    lines = []
    for letter in letters:
        at = at_epoch_ms(letter.received_ms).isoformat(timespec="seconds")
        payload = letter.payload[:_PAYLOAD_SHOWN].decode("utf-8", errors="replace")
        lines.append(
            f"{letter.id}\t{at}\t{letter.topic}\t{letter.field}\treplays={letter.replays}\t{letter.reason}\t{payload}"
        )
    return lines


async def replay_dead_letters(settings: Settings, name: str, *, since: str | None, ids: Sequence[int]) -> str:
    """Send the stored dead letters (since ``since``, or only ``ids``) again; the summary line."""
    writer = _writer(settings, name)
    try:
        await writer.connect()
        report = await writer.replay(since_ms=_since_ms(since), ids=list(ids))
    finally:
        await writer.aclose()
    line = (
        f"sink {name}: replayed {report.delivered} delivered, {report.refused} refused again, "
        f"{report.not_replayable} not replayable"
    )
    if report.unavailable:
        line += f"; stopped, the target is unavailable: {report.unavailable}"
    return line


def run_sink_action(settings: Settings, name: str, action: str, *, since: str | None, ids: Sequence[int]) -> int:
    """``uns sink <name> dead-letters|replay``: print the letters or the replay's summary; the exit code."""
    if action == "dead-letters":
        dead_letters = _writer(settings, name).dead_letters
        lines = list_dead_letters(dead_letters, since=since)
        for line in lines:
            print(line)
        if not lines:  # a note, not a row: stdout stays the letters alone
            since_text = f" since {since}" if since else ""
            print(f"sink {name}: no dead letters{since_text} in {dead_letters.path}", file=sys.stderr)
        return 0
    line = asyncio.run(replay_dead_letters(settings, name, since=since, ids=ids))
    print(line)
    return 1 if "unavailable" in line else 0
