"""Computed tags against a real broker: the embedded one, and Mosquitto (the reference) for the main path."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import orjson

from model.envelope import Envelope
from model.transforms import ComputedTag
from tests.exports import assert_all_is_honest
from tests.fixtures.broker import start_broker
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.recording import Recorder, recording
from tests.fixtures.running import running_task
from tests.fixtures.waiting import next_json, until
from uns.connect import network_clients
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl
from uns.settings import load_plant
from uns.transforms.plan import TagPlan, plan_tags
from uns.transforms.service import ComputedTags

_FILLER = "acme/dallas/bottling/line1/filler"
_LINE = "acme/dallas/bottling/line1"
_TAGS = [
    {
        "name": "Temperature_degF",
        "path": _FILLER,
        "expression": "t",
        "unit": "degF",
        "inputs": {"t": {"topic": f"{_FILLER}/data/Temperature", "unit": "degF"}},
    },
    {
        "name": "Speed_bpm",
        "path": _LINE,
        "expression": 'rate(n, "1m")',
        "unit": "bpm",
        "inputs": {"n": f"{_LINE}/data/Production/GoodCount"},
    },
    {
        "name": "PerScrap",
        "path": _LINE,
        "expression": "n / s",
        "inputs": {"n": f"{_LINE}/data/Production/GoodCount", "s": f"{_LINE}/data/Production/ScrapCount"},
    },
]


def test_all_is_honest() -> None:
    assert_all_is_honest("uns.transforms.service")


def _tags(tags: Sequence[Mapping[str, object]]) -> list[ComputedTag]:
    return [ComputedTag.model_validate(t) for t in tags]


def _plans(tags: Sequence[Mapping[str, object]]) -> list[TagPlan]:
    return plan_tags(_tags(tags), plant=load_plant(None))


class _Observer:
    """Every envelope seen on the line's data topics, newest last."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def envelopes(self, topic: str) -> list[Envelope]:
        return [Envelope.model_validate_json(m.payload) for m in self._recorder.on(topic)]

    def last(self, topic: str) -> Envelope | None:
        got = self.envelopes(topic)
        return got[-1] if got else None


@contextlib.asynccontextmanager
async def _running(
    url: BrokerUrl,
    tags: Sequence[Mapping[str, object]],
    *,
    data_dir: Path | None = None,
) -> AsyncIterator[tuple[ComputedTags, _Observer, MqttClient]]:
    async with (
        MqttClient(url=url, client_id="test-observer") as watch,
        MqttClient(url=url, client_id="test-plc") as plc,
        ComputedTags(
            tags=_tags(tags),
            plant=load_plant(None),
            clients=network_clients(url),
            enterprise="acme",
            health_interval_s=0.2,
            data_dir=data_dir,
        ) as tags_,
        # envelopes only (the broker holds alarms)
        recording(watch, [f"{_LINE}/data/#", f"{_LINE}/+/data/#"], name="test.observer") as recorder,
        running_task(tags_, name="test.tags"),
    ):
        yield tags_, _Observer(recorder), plc


def _env(value: object, t: int, *, quality: str = "good", unit: str | None = None) -> bytes:
    body = {"value": value, "timestamp_ms": t, "quality": quality, "datatype": "Double"}
    return orjson.dumps(body | ({"unit": unit} if unit else {}))


async def _publish(client: MqttClient, topic: str, payload: bytes) -> None:
    await client.publish(topic, payload, qos=1, retain=True)


async def _main_path(url: BrokerUrl) -> None:
    async with _running(url, _TAGS) as (tags, observer, plc):
        await _publish(plc, f"{_FILLER}/data/Temperature", _env(20.0, 1_000, unit="degC"))
        await until(lambda: observer.last(f"{_FILLER}/data/Temperature_degF") is not None, what="degF")
        got = observer.last(f"{_FILLER}/data/Temperature_degF")
        assert got is not None
        assert (got.value, got.unit, got.timestamp_ms, got.quality, got.source) == (
            68.0,
            "degF",
            1_000,
            "good",
            "transforms",
        )
        for t, n in [(0, 100), (30_000, 130)]:
            await _publish(plc, f"{_LINE}/data/Production/GoodCount", _env(n, 10_000 + t))
        await until(
            lambda: (e := observer.last(f"{_LINE}/data/Speed_bpm")) is not None and e.value == 60.0, what="speed"
        )
        await _publish(plc, f"{_LINE}/data/Production/ScrapCount", _env(13, 50_000, quality="stale"))
        await until(lambda: observer.last(f"{_LINE}/data/PerScrap") is not None, what="per scrap")
        got = observer.last(f"{_LINE}/data/PerScrap")
        assert got is not None
        assert (got.value, got.quality, got.timestamp_ms) == (10.0, "bad", 50_000)
        health = tags.health()["computed"]
        assert health[f"{_LINE}/data/PerScrap"]["reason"] == f"input s ({_LINE}/data/Production/ScrapCount) is stale"  # type: ignore[index]


async def test_computed_tags_on_the_embedded_broker(tmp_path: Path) -> None:
    async with start_broker(tmp_path) as broker:
        await _main_path(broker.url)


async def test_computed_tags_on_mosquitto(mosquitto: Mosquitto) -> None:
    await _main_path(BrokerUrl.from_str(mosquitto.url))


async def test_results_are_retained_and_health_is_published(tmp_path: Path) -> None:
    async with start_broker(tmp_path) as broker, _running(broker.url, _TAGS[:1]) as (_tags, observer, plc):
        await _publish(plc, f"{_FILLER}/data/Temperature", _env(100.0, 5, unit="degC"))
        await until(lambda: observer.last(f"{_FILLER}/data/Temperature_degF") is not None, what="degF")
        seen: dict[str, dict[str, object]] = {}
        async with MqttClient(url=broker.url, client_id="late") as late:
            await late.subscribe([f"{_FILLER}/data/Temperature_degF", "acme/hub/transforms/health"])
            async with asyncio.timeout(5):
                async for message in late.messages():
                    seen[message.topic] = orjson.loads(message.payload)
                    if len(seen) == 2 and message.retain:
                        break
        assert seen[f"{_FILLER}/data/Temperature_degF"]["value"] == 212.0
        health = seen["acme/hub/transforms/health"]
        assert (health["online"], health["tags"], health["errors"]) == (True, 1, 0)


async def test_a_failing_tag_does_not_stop_the_others(tmp_path: Path) -> None:
    async with start_broker(tmp_path) as broker, _running(broker.url, _TAGS) as (tags, observer, plc):
        await _publish(plc, f"{_LINE}/data/Production/ScrapCount", _env(0, 1))
        await _publish(plc, f"{_LINE}/data/Production/GoodCount", _env(50, 2))
        await until(lambda: observer.last(f"{_LINE}/data/PerScrap") is not None, what="per scrap")
        await _publish(plc, f"{_FILLER}/data/Temperature", _env(0.0, 3, unit="degC"))
        await until(lambda: observer.last(f"{_FILLER}/data/Temperature_degF") is not None, what="degF")
        per_scrap = observer.last(f"{_LINE}/data/PerScrap")
        assert per_scrap is not None
        assert (per_scrap.value, per_scrap.quality) == (None, "bad")
        got = observer.last(f"{_FILLER}/data/Temperature_degF")
        assert got is not None
        assert got.value == 32.0
        assert tags.health()["errors"] == 1


async def test_reload_adds_changes_and_removes_tags_without_a_restart(tmp_path: Path) -> None:
    async with start_broker(tmp_path) as broker, _running(broker.url, _TAGS[:1]) as (tags, observer, plc):
        await _publish(plc, f"{_FILLER}/data/Temperature", _env(100.0, 5, unit="degC"))
        await _publish(plc, f"{_FILLER}/data/Pressure", _env(2.0, 6, unit="bar"))
        await until(lambda: observer.last(f"{_FILLER}/data/Temperature_degF") is not None, what="degF")
        changed = {**_TAGS[0], "expression": "round(t)"}
        psi = {
            "name": "Pressure_psi",
            "path": _FILLER,
            "expression": "round(p, 2)",
            "unit": "psi",
            "inputs": {"p": {"topic": f"{_FILLER}/data/Pressure", "unit": "psi"}},
        }
        await tags.reload(_plans([changed, psi]))
        await until(
            lambda: observer.last(f"{_FILLER}/data/Pressure_psi") is not None, what="psi from the retained value"
        )
        got = observer.last(f"{_FILLER}/data/Pressure_psi")
        assert got is not None
        assert got.value == 29.01
        await _publish(plc, f"{_FILLER}/data/Temperature", _env(37.0, 7, unit="degC"))
        await until(
            lambda: (e := observer.last(f"{_FILLER}/data/Temperature_degF")) is not None and e.value == 99,
            what="rounded",
        )
        await tags.reload(_plans([psi]))
        assert [p.config.name for p in tags.plans] == ["Pressure_psi"]
        assert tags.health()["reloads"] == 2


async def test_every_republishes_while_the_inputs_are_silent(tmp_path: Path) -> None:
    silent = {
        "name": "Silent_s",
        "path": _LINE,
        "expression": "since_change(n)",
        "every": "200ms",
        "inputs": {"n": f"{_LINE}/data/Production/GoodCount"},
    }
    async with start_broker(tmp_path) as broker, _running(broker.url, [silent]) as (_tags, observer, plc):
        await _publish(plc, f"{_LINE}/data/Production/GoodCount", _env(5, 1_000))
        topic = f"{_LINE}/data/Silent_s"
        await until(lambda: len(observer.envelopes(topic)) >= 3, what="re-evaluations while silent")
        values = [e.value for e in observer.envelopes(topic)]
        seconds = [v for v in values if isinstance(v, float)]
        assert seconds == values
        assert seconds[0] == 0.0
        assert seconds == sorted(seconds)
        assert seconds[-1] > 0


async def test_health_says_offline_after_a_stop(tmp_path: Path) -> None:
    async with start_broker(tmp_path) as broker:
        async with _running(broker.url, _TAGS[:1]):
            pass
        async with MqttClient(url=broker.url, client_id="late") as late:
            await late.subscribe(["acme/hub/transforms/health"])
            assert await next_json(late, within_s=5, what="the offline health") == {"online": False}
