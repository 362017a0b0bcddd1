"""Loading computed tags: units resolved with pint, and every refusal naming the tag, the field and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.transforms import ComputedTag
from tests.exports import assert_all_is_honest
from uns.errors import ConfigError
from uns.settings import load_plant
from uns.transforms.config import diff_tags, read_transforms
from uns.transforms.demo import DEMO_TAGS
from uns.transforms.plan import plan_tags
from uns.transforms.units import UnitError, conversion

_FILLER = "acme/dallas/bottling/line1/filler"


@pytest.mark.parametrize(
    "name",
    [
        "model.transforms",
        "uns.transforms.plan",
        "uns.transforms.units",
        "uns.transforms.config",
        "uns.transforms.cli",
        "uns.transforms.demo",
        "uns.transforms.hub",
    ],
)
def test_all_is_honest(name: str) -> None:
    assert_all_is_honest(name)


@pytest.mark.parametrize(
    ("source", "target", "x", "want"),
    [
        ("degC", "degF", 100.0, 212.0),
        ("degF", "degC", 32.0, 0.0),
        ("bar", "psi", 2.0, 29.0075475460),
        ("1/s", "1/min", 2.0, 120.0),
        ("bottles/h", "bpm", 600.0, 10.0),
        ("l/min", "m**3/h", 1000.0, 60.0),
    ],
)
def test_conversions_are_affine_and_exact_enough(source: str, target: str, x: float, want: float) -> None:
    assert conversion(source, target)(x) == pytest.approx(want, rel=1e-9)


def test_a_conversion_is_resolved_once() -> None:
    assert conversion("degC", "degF") is conversion("degC", "degF")
    assert (conversion("degC", "degF").scale, conversion("degC", "degF").offset) == (1.8, 32.0)


@pytest.mark.parametrize(("source", "target"), [("bar", "degC"), ("parsnips", "m"), ("m/", "m")])
def test_bad_conversions_are_refused(source: str, target: str) -> None:
    with pytest.raises(UnitError):
        conversion(source, target)


def _tag(**fields: object) -> ComputedTag:
    data: dict[str, object] = {
        "name": "Temperature_degF",
        "path": _FILLER,
        "expression": "t",
        "inputs": {"t": {"topic": f"{_FILLER}/data/Temperature", "unit": "degF"}},
        "unit": "degF",
    }
    data.update(fields)
    return ComputedTag.model_validate(data)


def test_the_plant_file_gives_the_source_unit() -> None:
    (plan,) = plan_tags([_tag()], plant=load_plant(None))
    (item,) = plan.inputs
    assert item.convert is not None
    assert item.convert(100.0) == 212.0
    assert plan.topic == f"{_FILLER}/data/Temperature_degF"


@pytest.mark.parametrize(
    ("fields", "path", "reason"),
    [
        ({"unit": "furlongs/fortnite"}, "transforms[Temperature_degF].unit", "unknown unit"),
        (
            {"inputs": {"t": {"topic": f"{_FILLER}/data/Temperature", "unit": "degQ"}}},
            "transforms[Temperature_degF].inputs.t.unit",
            "unknown unit 'degQ'",
        ),
        (
            {"inputs": {"t": {"topic": f"{_FILLER}/data/Pressure", "unit": "degF"}}},
            "transforms[Temperature_degF].inputs.t.unit",
            "'bar' does not convert to 'degF'",
        ),
        (
            {"inputs": {"t": "acme/dallas/bottling/line9/data/Speed"}},
            "transforms[Temperature_degF].inputs.t.topic",
            "unknown topic: no equipment 'acme/dallas/bottling/line9'",
        ),
        ({"inputs": {"t": f"{_FILLER}/mes/state"}}, "transforms[Temperature_degF].inputs.t.topic", "data or kpi"),
        ({"path": "acme/nowhere"}, "transforms[Temperature_degF].path", "no such equipment"),
        ({"expression": "t.real"}, "transforms[Temperature_degF].expression", "column 1: attribute access"),
        ({"expression": "t + u"}, "transforms[Temperature_degF].expression", "unknown name 'u' (known: t)"),
        (
            {"expression": "1", "inputs": {"t": f"{_FILLER}/data/Temperature"}},
            "transforms[Temperature_degF].inputs",
            "not used by the expression: t",
        ),
        (
            {"inputs": {"t": {"topic": f"{_FILLER}/data/Temperature", "source_unit": "degC"}}},
            "transforms[Temperature_degF].inputs.t.source_unit",
            "needs unit",
        ),
    ],
)
def test_refusals_name_the_tag_field_and_value(fields: dict[str, object], path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_tags([_tag(**fields)], plant=load_plant(None))
    assert caught.value.path == path
    assert reason in caught.value.reason


def test_a_loop_between_tags_is_refused() -> None:
    a = _tag(name="A", expression="b + 1", inputs={"b": f"{_FILLER}/data/B"}, unit=None)
    b = _tag(name="B", expression="a * 2", inputs={"a": f"{_FILLER}/data/A"}, unit=None)
    with pytest.raises(ConfigError, match=r"in a loop: .*data/A -> .*data/B -> .*data/A"):
        plan_tags([a, b], plant=None)


def test_a_chain_is_fine_and_two_tags_on_one_topic_are_not() -> None:
    a = _tag(name="A", expression="t + 1", inputs={"t": f"{_FILLER}/data/Temperature"}, unit=None)
    b = _tag(name="B", expression="a * 2", inputs={"a": f"{_FILLER}/data/A"}, unit=None)
    assert [p.config.name for p in plan_tags([a, b], plant=None)] == ["A", "B"]
    with pytest.raises(ConfigError, match="a second tag publishes the same topic"):
        plan_tags([a, a], plant=None)


def test_the_demo_tags_load_against_the_demo_plant() -> None:
    plans = plan_tags(DEMO_TAGS, plant=load_plant(None))
    assert {p.topic for p in plans} >= {
        "acme/dallas/bottling/line1/data/Computed/LineSpeed",
        "acme/dallas/bottling/line1/filler/data/Computed/Temperature_degF",
    }


def test_a_disabled_tag_is_checked_for_clashes_but_not_run() -> None:
    assert plan_tags([_tag(enabled=False)], plant=None) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"inputs": {"t": "acme/a/Temperature"}}, "inputs.t.topic"),
        ({"inputs": {"1t": f"{_FILLER}/data/T"}}, "inputs.1t: an alias must be a name"),
        ({"name": "a/+"}, "name/path"),
        ({"inputs": {"t": f"{_FILLER}/data/Temperature_degF"}}, "the tag's own output"),
    ],
)
def test_the_model_refuses_bad_topics(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _tag(**fields)


def test_a_settings_file_names_the_bad_tag_field(tmp_path: Path) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text("transforms:\n  - {name: A, path: acme/x, expression: t}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_transforms(path)
    assert caught.value.source == str(path)
    assert caught.value.path == "transforms[0].inputs"


def test_the_diff_lists_added_removed_and_changed_tags() -> None:
    a, b = _tag(name="A"), _tag(name="B")
    diff = diff_tags([a, b], [a.model_copy(update={"expression": "t * 2"}), _tag(name="C")])
    assert diff.lines() == [f"+ {_FILLER}/data/C", f"- {_FILLER}/data/B", f"~ {_FILLER}/data/A"]
    assert diff_tags([a], [a]).lines() == ["no change"]
