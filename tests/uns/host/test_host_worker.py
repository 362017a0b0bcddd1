"""The host's core in a worker process (``host.worker``): a dead or hung worker is replaced and the
edge nodes' state comes back by rebirth; the parent's death leaves no process behind."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
import pytest

from tests.exports import assert_all_is_honest
from tests.fixtures.hub import RunningHub, plant_for, running_host
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import DOUBLE, INT64, RawEdgeNode, Watcher, edge_and_watcher, metric, now_ms, read_at
from tests.uns.host.worker_run import serving, worker_config
from uns.errors import HostWorkerError, UnsError
from uns.host.mirror import HostMirror
from uns.host.remote import HostWorker
from uns.host.worker import STATE_EVERY_S
from uns.mqtt.types import Message
from uns.sparkplug import DataType, Metric, Payload, encode_payload


@pytest.mark.parametrize(
    "module", ["worker", "remote", "mirror", "feed", "health", "late_births", "awaited_births", "republish", "seeding"]
)
def test_exports(module: str) -> None:
    assert_all_is_honest(f"uns.host.{module}")


@pytest.fixture
async def worker_hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    async with running_host("worker", None, tmp_path, worker_hang_s=0.5) as running:
        yield running


def _birth(edge: RawEdgeNode) -> None:
    edge.nbirth([metric("Uptime", 12, INT64)])
    edge.send("DBIRTH", [metric("Temp", 72.5, DOUBLE, alias=1)], device="filler")


def _temp(edge: RawEdgeNode, value: float) -> None:
    edge.send("DDATA", [metric(None, value, DOUBLE, alias=1, with_datatype=False)], device="filler")


def _worker(hub: RunningHub) -> HostWorker:
    worker = hub.host.worker
    assert worker is not None
    return worker


async def _replaced_then_recovered(
    hub: RunningHub, edge: RawEdgeNode, watcher: Watcher, pid: int, caplog: pytest.LogCaptureFixture
) -> str:
    """After the worker ``pid`` was made to fail: one ERROR, a new worker, rebirth asked, values flow again."""
    temp = f"{hub.cell}/data/Temp"
    mirror = hub.host.core
    assert isinstance(mirror, HostMirror)
    await until(lambda: mirror.restarts == 1 and _worker(hub).pid not in (None, pid), what="a new worker")
    _temp(edge, 50.0)  # the fresh core has seen no birth: it asks for one
    await until(lambda: edge.rebirth_requests() == 1, what="rebirth requested by the new worker's core")
    _birth(edge)  # as an edge node answers Node Control/Rebirth
    _temp(edge, 51.0)
    await until(lambda: (watcher.json(temp) or {}).get("value") == 51.0, what="republishing resumed")
    assert mirror.health()["worker"] == {"restarts": 1, "messages_lost": mirror.messages_lost}
    assert mirror.nodes[(hub.group, hub.node)].devices["filler"].online
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("uns.host")]
    assert len(errors) == 1, errors
    return errors[0]


async def test_a_killed_worker_is_replaced_and_state_comes_back_by_rebirth(
    worker_hub: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    hub = worker_hub
    async with edge_and_watcher(hub.url, hub.group, hub.node, [f"{hub.enterprise}/#"]) as (edge, watcher):
        _birth(edge)
        await until(lambda: watcher.json(f"{hub.cell}/data/Temp") is not None, what="the birth republished")
        pid = _worker(hub).pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        error = await _replaced_then_recovered(hub, edge, watcher, pid, caplog)
        assert f"(pid {pid}) died (exit code -9)" in error


async def test_a_new_worker_keeps_the_stale_marks_of_a_device_dead_before_it(worker_hub: RunningHub) -> None:
    # the dead worker's core held the marks; the new one is seeded from the node status last published
    hub, temp = worker_hub, f"{worker_hub.cell}/data/Temp"
    read_ms = now_ms() - 1000
    async with edge_and_watcher(hub.url, hub.group, hub.node, [f"{hub.enterprise}/#"]) as (edge, watcher):
        edge.nbirth([])
        edge.send("DBIRTH", [read_at(metric("Temp", 72.5, DOUBLE, alias=1), read_ms)], device="filler")
        await until(lambda: (watcher.json(temp) or {}).get("quality") == "good", what="the birth republished")
        edge.kill()
        await until(lambda: (watcher.json(temp) or {}).get("quality") == "stale", what="the death republished")
        stale_ms = (watcher.json(temp) or {})["timestamp_ms"]
        assert isinstance(stale_ms, int)
        pid = _worker(hub).pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await until(lambda: _worker(hub).pid not in (None, pid), what="a new worker")
        again = RawEdgeNode(hub.url, hub.group, hub.node, bd_seq=1)
        await again.start()
        try:
            again.nbirth([])
            again.send("DBIRTH", [read_at(metric("Temp", 72.5, DOUBLE, alias=1), read_ms)], device="filler")
            await until(lambda: (watcher.json(temp) or {}).get("quality") == "good", what="born again")
        finally:
            again.stop()
        envelope = watcher.json(temp) or {}
        assert envelope["value"] == 72.5
        assert isinstance(envelope["timestamp_ms"], int)
        assert stale_ms < envelope["timestamp_ms"] <= now_ms()  # after the mark the dead worker made


async def test_a_hung_worker_is_replaced(worker_hub: RunningHub, caplog: pytest.LogCaptureFixture) -> None:
    hub = worker_hub
    async with edge_and_watcher(hub.url, hub.group, hub.node, [f"{hub.enterprise}/#"]) as (edge, watcher):
        _birth(edge)
        await until(lambda: watcher.json(f"{hub.cell}/data/Temp") is not None, what="the birth republished")
        pid = _worker(hub).pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        _temp(edge, 49.0)  # a batch it will not answer
        error = await _replaced_then_recovered(hub, edge, watcher, pid, caplog)
        assert f"(pid {pid}) hung: no answer for" in error
        assert hub.host.core.health()["worker"] == {"restarts": 1, "messages_lost": 1}


async def test_over_a_socket_the_worker_republishes_as_uns_host_does(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # uns host against Mosquitto with host.worker: bytes only (no readings), QoS 1 windows as inline
    mosquitto = request.getfixturevalue("mosquitto")
    async with (
        running_host("mosquitto-worker", mosquitto, tmp_path) as hub,
        edge_and_watcher(hub.url, hub.group, hub.node, [f"{hub.enterprise}/#"]) as (edge, watcher),
    ):
        assert hub.host.core.hand_decoded is False
        _birth(edge)
        _temp(edge, 60.5)
        temp = f"{hub.cell}/data/Temp"
        await until(lambda: (watcher.json(temp) or {}).get("value") == 60.5, what="DDATA republished")
        counted = hub.host.core.counters.metrics_republished
        assert counted >= 3  # bdSeq, Uptime, Temp born; Temp's DDATA
        await until(
            lambda: (watcher.json(hub.host.health_topic) or {}).get("metrics_republished") == counted, what="health"
        )
        health = watcher.json(hub.host.health_topic)
        assert health is not None
        assert health["worker"] == {"restarts": 0, "messages_lost": 0}
        assert health["republish"]["backlog"] == 0  # type: ignore[index]


async def test_a_slow_publish_is_not_taken_for_a_hung_worker() -> None:
    # the broker holding the host's publish back (a slow consumer) for longer than hang_s: answers wait, no restart
    mirror = HostMirror()
    worker = HostWorker(config=worker_config(), mirror=mirror, hang_s=0.3)
    published: list[Message] = []
    sending = asyncio.Event()

    async def slow_send(messages: Sequence[Message]) -> None:
        sending.set()
        await asyncio.sleep(1.0)
        published.extend(messages)

    async with serving(worker, slow_send):
        worker.put("spBv1.0/g/NBIRTH/n", _nbirth(), 1)
        await sending.wait()
        worker.put("spBv1.0/g/NBIRTH/n", _nbirth(), 2)  # answered at once, published after the first
        await until(lambda: mirror.counters.births == 2 and len(published) >= 2, within_s=5, what="both published")
        await asyncio.sleep(0.5)  # the watchdog looks again
        worker.put("spBv1.0/g/NBIRTH/n", _nbirth(), 3)
        await until(lambda: mirror.counters.births == 3, within_s=5, what="the third answered")
        assert mirror.restarts == 0


async def test_a_worker_behind_stops_the_reading_and_everything_comes_back_in_order() -> None:
    # one batch in flight, four messages pending at most: the fifth put finds the caller told to wait
    mirror = HostMirror()
    worker = HostWorker(config=worker_config(), mirror=mirror, window=1, max_batch=4)
    published: list[Message] = []
    release = asyncio.Event()

    async def held_send(messages: Sequence[Message]) -> None:
        await release.wait()  # the broker holds the host's publish back
        published.extend(messages)

    async with serving(worker, held_send) as tasks:
        worker.put("spBv1.0/g/NBIRTH/n", _nbirth(), 0)
        await until(lambda: mirror.counters.messages == 1, what="the birth answered")
        waits = 0
        for seq in range(1, 13):
            worker.put("spBv1.0/g/NDATA/n", _ndata(seq), seq)
            if worker.full:
                waits += 1
                room = tasks.create_task(worker.room())
                if not release.is_set():
                    await asyncio.sleep(0.05)
                    assert not room.done()  # nothing moves while the publish is held
                    assert worker.backlog == 8  # a batch in flight, one pending: no more taken
                    release.set()
                await room
        assert waits >= 1
        await until(lambda: mirror.counters.messages == 13 and worker.backlog == 0, what="all answered")
        ups = [m.payload for m in published if m.topic.endswith("/data/Up")]
        assert [orjson.loads(p)["value"] for p in ups] == [1, *range(1, 13)]  # in order, none lost


async def test_a_touched_session_reaches_the_mirror_within_state_every_s_while_batches_keep_coming() -> None:
    # each batch used to push the state back by STATE_EVERY_S: a change followed by another batch 70 ms later
    # reached the mirror only after the poll that followed that batch (>= 170 ms)
    mirror = HostMirror()
    worker = HostWorker(config=worker_config(), mirror=mirror, batch_gap_s=0.0)

    async def discard(messages: Sequence[Message]) -> None:
        pass

    def seq() -> int:
        node = mirror.nodes.get(("g", "n"))
        return -1 if node is None or node.seq is None else node.seq

    async def seq_reaches(want: int) -> None:
        async with asyncio.timeout(2.0):
            while True:
                if seq() >= want:
                    return
                await asyncio.sleep(0.001)  # finer than until's 10 ms: the figure is ~100 ms

    async with serving(worker, discard):
        worker.put("spBv1.0/g/NBIRTH/n", _nbirth(), 0)
        await seq_reaches(0)  # a birth's state comes with its answer: the worker's last state is now
        put_s = time.monotonic()
        worker.put("spBv1.0/g/NDATA/n", _ndata(1), 1)
        await asyncio.sleep(0.07)  # the pace of the next batch, not a wait for a result
        worker.put("spBv1.0/g/NDATA/n", _ndata(2), 2)
        await seq_reaches(1)
        took_s = time.monotonic() - put_s
        assert took_s < STATE_EVERY_S + 0.05, f"{took_s:.3f} s"


async def test_messages_unanswered_at_close_are_counted_lost(caplog: pytest.LogCaptureFixture) -> None:
    # a batch in flight and the pending one were dropped with an INFO line counting batches, and not counted
    mirror = HostMirror()
    worker = HostWorker(config=worker_config(), mirror=mirror)
    await worker.start()
    try:
        worker.put("spBv1.0/g/NBIRTH/n", _nbirth(), 0)
        worker.put("spBv1.0/g/NDATA/n", _ndata(1), 1)
        worker.put("spBv1.0/g/NDATA/n", _ndata(2), 2)
        await until(lambda: worker.backlog == 3 and not worker._pending, what="the batch in flight")
        worker.put("spBv1.0/g/NDATA/n", _ndata(3), 3)  # waits for the answer, which nobody reads (no run)
        worker.put("spBv1.0/g/NDATA/n", _ndata(4), 4)
        assert worker.backlog == 5
    finally:
        with caplog.at_level(logging.INFO, logger="uns.host.remote"):
            await worker.close()
    assert mirror.health()["worker"] == {"restarts": 0, "messages_lost": 5}
    assert worker.backlog == 0
    assert any("5 messages unanswered" in r.getMessage() for r in caplog.records), caplog.text


async def test_a_first_worker_that_dies_while_starting_fails_the_host_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the private _WorkerLost used to escape SparkplugHost's enter
    monkeypatch.setenv("PYTHONHOME", str(tmp_path / "no-python"))  # the worker's interpreter cannot start
    with pytest.raises(UnsError, match=r"died \(exit code 1\) while starting: .*UNS_HOST__WORKER=false") as caught:
        async with running_host("worker", None, tmp_path):
            pass
    assert isinstance(caught.value, HostWorkerError)
    assert caught.value.pid is not None
    assert not _running(caught.value.pid)


def _ndata(seq: int) -> bytes:
    return encode_payload(Payload(seq=seq, metrics=[Metric(name="Up", datatype=DataType.Int64, value=seq)]))


def _nbirth() -> bytes:
    bd_seq = Metric(name="bdSeq", datatype=DataType.Int64, value=0)
    return encode_payload(Payload(seq=0, metrics=[bd_seq, Metric(name="Up", datatype=DataType.Int64, value=1)]))


_HUB_MAIN = """
# a hub's main module: it imports heavy parts (DuckDB) that the worker must not load
import asyncio
import sys
from pathlib import Path

import duckdb

from model.equipment import Plant
from uns.host.bounds import HostBounds
from uns.host.mirror import HostMirror
from uns.host.remote import HostWorker
from uns.host.worker import WorkerConfig


async def main() -> None:
    plant = Plant.model_validate_json(Path(sys.argv[1]).read_text())
    config = WorkerConfig(plant=plant, max_payload_bytes=1 << 20, rebirth_min_interval_ms=0,
                          republish_qos=0, bounds=HostBounds(), hand_decoded=False, log_level=30)
    worker = HostWorker(config=config, mirror=HostMirror())
    await worker.start()
    print(worker.pid, flush=True)
    await asyncio.sleep(60)


if __name__ == "__main__":
    asyncio.run(main())
"""


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def _mapped(pid: int) -> str:
    """The files the process has mapped (its shared libraries among them)."""
    return Path(f"/proc/{pid}/maps").read_text()


def _command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


async def test_the_worker_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    script, plant = tmp_path / "hub_main.py", tmp_path / "plant.json"
    script.write_text(_HUB_MAIN)
    # the plant as JSON: importing tests.fixtures.hub in the script would cost seconds (it reaches hub.app)
    plant.write_text(plant_for("acme", "g", "n").model_dump_json())
    command = [sys.executable, str(script), str(plant)]
    parent = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    try:
        assert parent.stdout is not None
        worker_pid = int(await parent.stdout.readline())
        # the worker alone, its own light process: no fork server or resource tracker, nor the hub's main module
        assert _children(parent.pid) == {worker_pid}
        assert _command_line(worker_pid)[1:3] == ["-m", "uns.host.worker"]
        assert "duckdb" not in _mapped(worker_pid)
        assert _running(worker_pid)
    finally:
        parent.kill()
        await parent.wait()
    await until(lambda: not _running(worker_pid), within_s=10, what="the worker gone")
