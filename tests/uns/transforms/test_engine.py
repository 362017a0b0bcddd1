"""The computed tags' pure core: values, units, quality with its reason, newest input's time, isolated failures."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
import pytest

from model.envelope import Envelope, read_fields
from model.transforms import ComputedTag
from tests.exports import assert_all_is_honest
from uns.transforms.engine import Engine
from uns.transforms.plan import plan_tags

_CELL = "acme/dallas/bottling/line1/filler"


def test_all_is_honest() -> None:
    assert_all_is_honest("uns.transforms.engine")


def _engine(*tags: Mapping[str, object]) -> Engine:
    models = [ComputedTag.model_validate({"path": _CELL, **tag}) for tag in tags]
    return Engine(plan_tags(models, plant=None))


def _env(value: object, t: int, quality: str = "good", unit: str | None = None) -> bytes:
    datatype = "Boolean" if isinstance(value, bool) else "Double"  # the value must fit it (model.envelope)
    body: dict[str, object] = {"value": value, "timestamp_ms": t, "quality": quality, "datatype": datatype}
    if unit is not None:
        body["unit"] = unit
    return orjson.dumps(body)


def _results(out: list[tuple[str, bytes]]) -> dict[str, Envelope]:
    return {topic: Envelope.model_validate_json(body) for topic, body in out}


_RATIO = {"name": "Ratio", "expression": "a / b", "inputs": {"a": f"{_CELL}/data/A", "b": f"{_CELL}/data/B"}}


def test_evaluates_once_every_input_has_a_value_stamped_with_the_newest_time() -> None:
    engine = _engine(_RATIO)
    assert engine.on_message(f"{_CELL}/data/A", _env(6, 2_000), now_ms=0) == []
    out = _results(engine.on_message(f"{_CELL}/data/B", _env(3, 1_000), now_ms=0))
    got = out[f"{_CELL}/data/Ratio"]
    assert (got.value, got.timestamp_ms, got.quality, got.datatype, got.source) == (
        2.0,
        2_000,
        "good",
        "Double",
        "transforms",
    )


def test_takes_the_decoded_form_of_an_in_process_publisher_instead_of_the_json() -> None:
    engine = _engine(_RATIO)
    body = _env(6, 2_000, unit="kg")
    decoded = read_fields(orjson.loads(body), body, now_ms=0)
    # the JSON is not read again: bytes that are no envelope at all still give the decoded reading
    assert engine.on_message(f"{_CELL}/data/A", b"not json", now_ms=0, decoded=decoded) == []
    out = _results(engine.on_message(f"{_CELL}/data/B", _env(3, 1_000), now_ms=0))
    got = out[f"{_CELL}/data/Ratio"]
    assert (got.value, got.timestamp_ms, got.quality) == (2.0, 2_000, "good")
    uncertain = read_fields({"value": 8.0, "timestamp_ms": 3_000, "quality": "uncertain"}, b"", now_ms=0)
    out = _results(engine.on_message(f"{_CELL}/data/A", b"", now_ms=0, decoded=uncertain))
    got = out[f"{_CELL}/data/Ratio"]
    assert (got.value, got.timestamp_ms, got.quality) == (8.0 / 3, 3_000, "uncertain")
    assert engine.rejected == 0


def test_publishes_only_when_value_or_quality_changes() -> None:
    engine = _engine(_RATIO)
    engine.on_message(f"{_CELL}/data/A", _env(6, 1), now_ms=0)
    assert engine.on_message(f"{_CELL}/data/B", _env(3, 2), now_ms=0)
    assert engine.on_message(f"{_CELL}/data/B", _env(3, 3), now_ms=0) == []
    assert _results(engine.on_message(f"{_CELL}/data/B", _env(3, 4, "uncertain"), now_ms=0))


@pytest.mark.parametrize(
    ("quality", "want"),
    [("good", "good"), ("uncertain", "uncertain"), ("bad", "bad"), ("stale", "bad")],
)
def test_quality_propagates_with_the_reason_in_health(quality: str, want: str) -> None:
    engine = _engine(_RATIO)
    engine.on_message(f"{_CELL}/data/A", _env(6, 1), now_ms=0)
    got = _results(engine.on_message(f"{_CELL}/data/B", _env(3, 2, quality), now_ms=0))[f"{_CELL}/data/Ratio"]
    assert (got.value, got.quality) == (2.0, want)
    tag = engine.health()["computed"][f"{_CELL}/data/Ratio"]  # type: ignore[index]
    reason = None if quality == "good" else f"input b ({_CELL}/data/B) is {quality}"
    assert tag["reason"] == reason


def test_a_null_input_makes_a_bad_null_result() -> None:
    engine = _engine(_RATIO)
    engine.on_message(f"{_CELL}/data/A", _env(6, 1), now_ms=0)
    got = _results(engine.on_message(f"{_CELL}/data/B", _env(None, 2, "bad"), now_ms=0))[f"{_CELL}/data/Ratio"]
    assert (got.value, got.quality) == (None, "bad")


def test_units_from_the_envelope_when_the_config_names_none() -> None:
    engine = _engine(
        {
            "name": "T_F",
            "expression": "t",
            "unit": "degF",
            "inputs": {"t": {"topic": f"{_CELL}/data/T", "unit": "degF"}},
        }
    )
    got = _results(engine.on_message(f"{_CELL}/data/T", _env(100.0, 5, unit="degC"), now_ms=0))[f"{_CELL}/data/T_F"]
    assert (got.value, got.unit) == (212.0, "degF")
    got = _results(engine.on_message(f"{_CELL}/data/T", _env(5.0, 6, unit="bar"), now_ms=0))[f"{_CELL}/data/T_F"]
    assert got.quality == "bad"
    assert "'bar' does not convert to 'degF'" in str(engine.health()["computed"])


def test_a_failing_tag_is_isolated_counted_and_the_others_keep_running() -> None:
    double = {"name": "Double", "expression": "b * 2", "inputs": {"b": f"{_CELL}/data/B"}}
    engine = _engine(_RATIO, double)
    engine.on_message(f"{_CELL}/data/A", _env(6, 1), now_ms=0)
    out = _results(engine.on_message(f"{_CELL}/data/B", _env(0, 2), now_ms=0))
    assert (out[f"{_CELL}/data/Ratio"].value, out[f"{_CELL}/data/Ratio"].quality) == (None, "bad")
    assert (out[f"{_CELL}/data/Double"].value, out[f"{_CELL}/data/Double"].quality) == (0, "good")
    out = _results(engine.on_message(f"{_CELL}/data/B", _env(2, 3), now_ms=0))
    assert out[f"{_CELL}/data/Ratio"].value == 3.0
    health = engine.health()
    assert health["errors"] == 1
    ratio = health["computed"][f"{_CELL}/data/Ratio"]  # type: ignore[index]
    assert ratio["last_error"] == "ZeroDivisionError: division by zero"
    assert ratio["reason"] is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", "not JSON"),
        (b"[1]", "not a value envelope"),
        (b'{"value": 1, "timestamp_ms": "x"}', "timestamp_ms"),
        (b'{"value": 1, "quality": "great"}', "quality"),
        (b'{"value": 1, "quality": ["good"]}', "quality"),  # raised TypeError before the one reader
        (b'{"value": "x", "datatype": "Double"}', "a string, but the datatype is Double"),
    ],
)
def test_bad_input_is_counted_and_the_last_good_value_kept(
    payload: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _engine({"name": "Double", "expression": "b * 2", "inputs": {"b": f"{_CELL}/data/B"}})
    engine.on_message(f"{_CELL}/data/B", _env(4, 1), now_ms=0)
    assert engine.on_message(f"{_CELL}/data/B", payload, now_ms=0) == []
    assert engine.health()["rejected"] == 1
    assert f"{_CELL}/data/B" in caplog.text
    assert reason in caplog.text
    assert engine.health()["computed"][f"{_CELL}/data/Double"]["value"] == 8  # type: ignore[index]


def test_an_envelope_without_time_is_stamped_now() -> None:
    engine = _engine({"name": "Double", "expression": "b * 2", "inputs": {"b": f"{_CELL}/data/B"}})
    got = _results(engine.on_message(f"{_CELL}/data/B", b'{"value": 4}', now_ms=77))[f"{_CELL}/data/Double"]
    assert (got.value, got.timestamp_ms, got.datatype) == (8, 77, "Int64")


def test_line_speed_per_minute_from_a_counter() -> None:
    engine = _engine(
        {"name": "Speed", "expression": 'rate(n, "1m")', "unit": "bpm", "inputs": {"n": f"{_CELL}/data/Count"}}
    )
    values = []
    for t, n in [(0, 100), (15_000, 130), (30_000, 160), (60_000, 220)]:
        for _topic, body in engine.on_message(f"{_CELL}/data/Count", _env(n, t), now_ms=0):
            values.append(Envelope.model_validate_json(body).value)
    assert values == [0.0, 120.0]  # 30 bottles in 15 s, then steady: published once


def test_a_reload_keeps_unchanged_tags_and_primes_new_ones() -> None:
    counting = {"name": "Starts", "expression": "count_rising(r)", "inputs": {"r": f"{_CELL}/data/Running"}}
    old = _engine(counting)
    for t, r in [(1, False), (2, True), (3, False), (4, True)]:
        old.on_message(f"{_CELL}/data/Running", _env(r, t), now_ms=0)
    double = {"name": "Twice", "expression": "r * 2", "inputs": {"r": f"{_CELL}/data/Running"}}
    models = [ComputedTag.model_validate({"path": _CELL, **tag}) for tag in (counting, double)]
    new = Engine(plan_tags(models, plant=None), keep=old)
    out = _results(new.prime(f"{_CELL}/data/Running", _env(True, 4), now_ms=0))
    assert list(out) == [f"{_CELL}/data/Twice"]  # the kept tag is not fed twice
    assert out[f"{_CELL}/data/Twice"].value == 2
    out = _results(new.on_message(f"{_CELL}/data/Running", _env(False, 5), now_ms=0))
    out |= _results(new.on_message(f"{_CELL}/data/Running", _env(True, 6), now_ms=0))
    assert out[f"{_CELL}/data/Starts"].value == 3  # 2 before the reload, 1 after


def test_every_re_evaluates_silent_inputs_at_the_hubs_clock() -> None:
    engine = _engine(
        {"name": "Speed", "expression": 'rate(n, "1m")', "every": "10s", "inputs": {"n": f"{_CELL}/data/Count"}},
        {"name": "Plain", "expression": 'rate(n, "1m")', "inputs": {"n": f"{_CELL}/data/Count"}},
    )
    assert engine.tick_ms == 10_000
    engine.on_message(f"{_CELL}/data/Count", _env(100, 0), now_ms=0)
    engine.on_message(f"{_CELL}/data/Count", _env(130, 30_000), now_ms=30_000)
    assert engine.tick(35_000) == []  # not 10 s since the last evaluation yet
    got = _results(engine.tick(45_000))  # the line stopped: the counter stays at 130
    assert list(got) == [f"{_CELL}/data/Speed"]
    assert (got[f"{_CELL}/data/Speed"].value, got[f"{_CELL}/data/Speed"].timestamp_ms) == (40.0, 45_000)
    got = _results(engine.tick(200_000))
    assert got[f"{_CELL}/data/Speed"].value == 0.0


def test_every_is_refused_when_it_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match="every"):
        _engine({"name": "X", "expression": "n", "every": "often", "inputs": {"n": f"{_CELL}/data/Count"}})
