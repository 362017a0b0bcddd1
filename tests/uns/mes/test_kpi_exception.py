"""KPIs reported by exception: a KPI goes out again only when its value or quality changed, retained, so a
late subscriber still has it; an adapter that starts, or whose connection was lost, publishes every KPI once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import cast

import orjson
import pytest

from model.config import DeriveRule, MesSection
from model.envelope import JsonValue, Quality
from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.recording import Recorder, recorder_on
from tests.fixtures.running import running
from tests.fixtures.waiting import until
from uns.clock import at_epoch_ms, now_ms
from uns.connect import ClientFactory, local_clients, network_clients
from uns.mes.kpi_memory import KpiMemory
from uns.mes.oee import OeeRow
from uns.mes.service import MesAdapter
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl
from uns.store.database import Database
from uns.store.writer import Writer

LINE = "acme/dallas/bottling/line1"
CELL = f"{LINE}/filler"
KPIS = ("oee", "availability", "performance", "quality", "state", "state_name", "order")
SECTION = MesSection(
    kpi_interval_s=0.2,
    commit_interval_s=0.05,
    ideal_cycle_time_s={CELL: 0.5},
    derive=[DeriveRule(match="acme/+/+/+/+/data/State", kind="state", state_map={1: 10000, 5: 180000})],
)


def _envelope(value: int, ts: int) -> bytes:
    return orjson.dumps({"value": value, "timestamp_ms": ts, "quality": "good", "datatype": "Int32"})


@contextlib.asynccontextmanager
async def _adapter(clients: ClientFactory, data_dir: Path) -> AsyncIterator[MesAdapter]:
    writer = Writer(Database(path=data_dir / "uns.duckdb"), name="test-kpi-writer")
    await writer.open()
    try:
        mes = MesAdapter(settings=SECTION, enterprise="acme", clients=clients, writer=writer)
        async with running(mes, name="test.mes"):
            yield mes
    finally:
        await writer.close()


def _values(recorder: Recorder, name: str) -> list[JsonValue]:
    return [orjson.loads(m.payload)["value"] for m in recorder.on(f"{CELL}/kpi/{name}")]


def _kpis(recorder: Recorder, start: int = 0) -> set[str]:
    return {m.topic for m in recorder.messages[start:] if "/kpi/mark" not in m.topic}


async def _settled(recorder: Recorder, mes: MesAdapter, runs: int) -> None:
    """Wait for ``runs`` more KPI runs, then for a mark sent after them: what they published is in."""
    start = mes.counters["kpi_runs"]
    await until(lambda: mes.counters["kpi_runs"] >= start + runs, what=f"{runs} KPI runs")
    mark = f"{CELL}/kpi/mark{len(recorder.messages)}"
    await recorder.client.publish(mark, b"{}", qos=1)
    await until(lambda: recorder.on(mark), what="the mark")


async def _retained(url: BrokerUrl) -> dict[str, tuple[JsonValue, bool]]:
    """What a subscriber that comes now gets on the cell's KPI topics: value and retain flag per topic."""
    got: dict[str, tuple[JsonValue, bool]] = {}
    async with MqttClient(url=url, client_id="late") as late, asyncio.timeout(5):
        await late.subscribe([f"{CELL}/kpi/#"], qos=1)
        async for message in late.messages():
            got[message.topic] = (orjson.loads(message.payload)["value"], message.retain)
            if len(got) == len(KPIS):
                return got
    return got


async def test_an_unchanged_kpi_is_not_published_again_a_changed_one_is_and_a_restart_sends_all_once(
    tmp_path: Path,
) -> None:
    t0 = now_ms() - 120_000
    async with start_broker(tmp_path) as broker, recorder_on(broker.url, [f"{CELL}/kpi/#"]) as watcher:
        async with _adapter(local_clients(broker), tmp_path) as mes:
            await watcher.client.publish(f"{CELL}/data/State", _envelope(1, t0), qos=1)
            await until(lambda: _values(watcher, "state") == [10000], what="the state KPI")
            # producing since t0, nothing counted: every KPI of the cell is steady from here on
            await _settled(watcher, mes, runs=3)
            first = {name: _values(watcher, name) for name in KPIS}
            assert first["state_name"] == ["producing at full speed"]
            assert first["availability"] == [1.0]
            assert first["quality"] == [None]
            assert all(len(values) == 1 for values in first.values()), first
            published = mes.counters["kpi_published"]
            await _settled(watcher, mes, runs=2)  # two more intervals
            assert {name: _values(watcher, name) for name in KPIS} == first
            assert mes.counters["kpi_published"] == published
            # a fault: the state changes, and availability falls with every interval it lasts
            await watcher.client.publish(f"{CELL}/data/State", _envelope(5, t0 + 100_000), qos=1)
            await until(lambda: _values(watcher, "state") == [10000, 180000], what="the fault's state KPI")
            await _settled(watcher, mes, runs=2)
            assert _values(watcher, "state_name") == ["producing at full speed", "equipment failure"]
            availability = _values(watcher, "availability")
            assert len(availability) >= 3
            assert all(isinstance(a, float) and a < 1.0 for a in availability[1:])
            assert _values(watcher, "quality") == [None]  # still nothing counted: not sent again
            # each KPI is stamped with the instant it was computed for: the oee view asked up to the envelope's
            # timestamp_ms answers the published value (availability falls every ms of the fault; stamped when it
            # was published, a few ms later, the view answered another value)
            for message in watcher.on(f"{CELL}/kpi/availability")[1:]:
                published = orjson.loads(message.payload)
                as_of = at_epoch_ms(published["timestamp_ms"])
                window = as_of - timedelta(hours=SECTION.kpi_window_h)
                params = {"path": [CELL], "start": [window.isoformat()], "end": [as_of.isoformat()]}
                document = await asyncio.to_thread(mes.view, "oee", params, now=as_of)
                (row,) = cast("list[OeeRow]", document["rows"])
                assert row.availability == published["value"]
        # a later subscriber gets every KPI retained, with its last value
        late = await _retained(broker.url)
        assert set(late) == {f"{CELL}/kpi/{name}" for name in KPIS}
        assert all(retain for _, retain in late.values())
        assert late[f"{CELL}/kpi/state"][0] == 180000
        assert late[f"{CELL}/kpi/availability"][0] == availability[-1]
        # a restarted adapter has an empty memory: it publishes every KPI once, then only changes
        seen = len(watcher.messages)
        async with _adapter(local_clients(broker), tmp_path) as mes:
            await until(lambda: mes.counters["kpi_runs"] >= 1, what="the restarted adapter's first KPI run")
            await _settled(watcher, mes, runs=2)
            assert _kpis(watcher, seen) == {f"{CELL}/kpi/{name}" for name in KPIS}
            assert _values(watcher, "quality") == [None, None]
            assert _values(watcher, "state") == [10000, 180000, 180000]


async def test_an_adapter_whose_broker_restarted_empty_publishes_every_kpi_again(tmp_path: Path) -> None:
    t0 = now_ms() - 120_000
    first = start_broker(tmp_path / "first")
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(first)
        url = first.url
        async with _adapter(network_clients(url), tmp_path) as mes:
            async with recorder_on(url, [f"{CELL}/kpi/#"]) as before:
                await before.client.publish(f"{CELL}/data/State", _envelope(1, t0), qos=1)
                await until(lambda: _values(before, "state") == [10000], what="the state KPI")
                await _settled(before, mes, runs=2)
                assert _values(before, "state") == [10000]
            await stack.aclose()  # the broker goes away with its retained messages
            listeners = {"tcp": {"bind": "127.0.0.1", "port": url.port}}
            second = start_broker(tmp_path / "second", broker_test_config(listeners=listeners))
            async with second, recorder_on(second.url, [f"{CELL}/kpi/#"]) as after:
                await until(lambda: len(_kpis(after)) == len(KPIS), within_s=15, what="every KPI again")
                assert _values(after, "state") == [10000]


@pytest.mark.parametrize(
    ("offers", "sent"),
    [
        pytest.param([(0.5, Quality.good), (0.5, Quality.good)], [True, False], id="same value"),
        pytest.param([(0.5, Quality.good), (0.50001, Quality.good)], [True, True], id="any float change"),
        pytest.param([(None, Quality.uncertain), (None, Quality.uncertain)], [True, False], id="unknown twice"),
        pytest.param([(None, Quality.uncertain), (0.0, Quality.good)], [True, True], id="known now"),
        pytest.param([(1, Quality.good), (1.0, Quality.good), (True, Quality.good)], [True, True, True], id="types"),
        pytest.param([("WO-1", Quality.good), ("WO-1", Quality.bad)], [True, True], id="quality"),
    ],
)
def test_the_memory_sends_only_what_differs_from_the_last_published(
    offers: list[tuple[JsonValue, Quality]], sent: list[bool]
) -> None:
    memory = KpiMemory()
    answers = []
    for value, quality in offers:
        answers.append(memory.changed("a/kpi/x", value, quality))
        memory.published()
    assert answers == sent


def test_an_offer_not_published_is_offered_again_and_forget_sends_everything_again() -> None:
    memory = KpiMemory()
    assert memory.changed("a/kpi/x", 0.5, Quality.good)
    assert memory.changed("a/kpi/x", 0.5, Quality.good)  # the first never went out
    memory.published()
    assert len(memory) == 1
    assert not memory.changed("a/kpi/x", 0.5, Quality.good)
    memory.forget()
    assert len(memory) == 0
    assert memory.changed("a/kpi/x", 0.5, Quality.good)
