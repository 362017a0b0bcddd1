"""``uns sink`` of kind rest as its own process: killed with SIGKILL mid-stream and restarted, and its replay CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import yaml

from tests.fixtures.asgi import serve
from tests.fixtures.broker import start_broker
from tests.uns.sinks.crash_stream import killed_mid_stream
from tests.uns.sinks.rest_target import TOKEN, Erp
from uns.clock import now_ms
from uns.historian.rows import Rejected
from uns.mqtt.types import Message
from uns.sinks.dead_letters import DeadLetters

TOTAL = 1500
DONE = "acme/dallas/bottling/line1/filler/mes/order_complete"


def _write_config(path: Path, base: str, dead: Path) -> Path:
    sink = {
        "kind": "rest",
        "name": "erp",
        "topics": ["acme/+/+/+/+/mes/#"],
        "routes": [{"url": base + "/api/orders/${body.order_id}", "body": {"order": "${body.order_id}"}}],
        "auth": {"kind": "bearer", "token": TOKEN},
        "flush_interval_s": 0.1,
        "batch_rows": 50,
        "dead_letters_path": str(dead),
    }
    path.write_text(yaml.safe_dump({"sinks": [sink], "enterprise": "acme"}))
    return path


def _order(i: int) -> bytes:
    return orjson.dumps({"order_id": f"WO-{i}", "timestamp_ms": now_ms() - 1000})


async def test_a_rest_sink_killed_mid_stream_and_restarted_loses_nothing(tmp_path: Path) -> None:
    erp = Erp()
    async with serve(erp.app()) as base, start_broker(tmp_path) as broker:
        config = _write_config(tmp_path / "uns.yaml", base, tmp_path / "dead.sqlite")
        args = ["sink", "erp", "--config", str(config), "--broker", str(broker.url), "--data-dir", str(tmp_path)]
        killed = await killed_mid_stream(
            args, tmp_path / "sink.log", str(broker.url), lambda i: Message(DONE, _order(i), qos=1),
            total=TOTAL, chunk=50, stored=lambda: len(erp.stored), some=150,
            all_in=lambda: len(erp.stored) == TOTAL, what="orders posted",
        )  # fmt: skip
        assert killed.at_kill < TOTAL, "the stream ended before the kill: not mid-stream"
        assert killed.exit_code == 0
    assert sorted(str(body["order"]) for body in erp.stored.values()) == sorted(f"WO-{i}" for i in range(TOTAL))
    # what was posted but not acknowledged at the kill came again with the same key: the ERP dropped it
    assert erp.requests == TOTAL + erp.repeats


async def test_uns_sink_lists_and_replays_its_dead_letters(tmp_path: Path) -> None:
    erp = Erp()
    async with serve(erp.app()) as base:
        config = _write_config(tmp_path / "uns.yaml", base, tmp_path / "dead.sqlite")

        def uns(*args: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "hub.cli", "sink", "erp", *args, "--config", str(config)]
            return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

        # none yet: said on stderr (naming the sink and its file), stdout stays the letters alone
        empty = await asyncio.to_thread(uns, "dead-letters")
        assert (empty.returncode, empty.stdout) == (0, "")
        assert empty.stderr == f"sink erp: no dead letters in {tmp_path / 'dead.sqlite'}\n"

        letters = DeadLetters(tmp_path / "dead.sqlite")
        letters.add("erp", [Rejected(DONE, "http", "HTTP 503 for too long", _order(1)),
                            Rejected(DONE, "payload", "not JSON at byte 0", b"{oops")])  # fmt: skip
        later = await asyncio.to_thread(uns, "dead-letters", "--since", "now")
        assert (later.returncode, later.stdout) == (0, "")
        assert later.stderr == f"sink erp: no dead letters since now in {tmp_path / 'dead.sqlite'}\n"
        listed = await asyncio.to_thread(uns, "dead-letters")
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert [line.split("\t")[2:4] for line in lines] == [[DONE, "http"], [DONE, "payload"]]
        replayed = await asyncio.to_thread(uns, "replay", "--since", "-1h")
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stdout.strip() == "sink erp: replayed 1 delivered, 0 refused again, 1 not replayable"
    assert [body["order"] for body in erp.stored.values()] == ["WO-1"]
    assert [(letter.field, letter.topic) for letter in letters.list()] == [("payload", DONE)]
