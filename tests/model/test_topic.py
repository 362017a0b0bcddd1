"""UnsTopic: parse, format, round-trip and rejections."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.topic import ClassWord, TopicError, UnsTopic, at_every_depth, is_slug


@pytest.mark.parametrize(
    ("topic", "path", "class_word", "name"),
    [
        ("acme/data/x", ("acme",), ClassWord.data, ("x",)),
        (
            "acme/dallas/packaging/line3/palletizer/data/Production/GoodCount",
            ("acme", "dallas", "packaging", "line3", "palletizer"),
            ClassWord.data,
            ("Production", "GoodCount"),
        ),
        (
            "acme/dallas/bottling/line1/mes/work-order",
            ("acme", "dallas", "bottling", "line1"),
            ClassWord.mes,
            ("work-order",),
        ),
        ("acme/dallas/kpi/oee", ("acme", "dallas"), ClassWord.kpi, ("oee",)),
        ("acme/d/a/l/c/cmd/Set Point.value", ("acme", "d", "a", "l", "c"), ClassWord.cmd, ("Set Point.value",)),
        # the first class word after the path wins; later ones are part of the name
        ("acme/data/data/kpi", ("acme",), ClassWord.data, ("data", "kpi")),
        ("acme/unbound/_/node-1/data/Temp", ("acme", "unbound", "_", "node-1"), ClassWord.data, ("Temp",)),
        ("a_b-1/data/Ünïcode name", ("a_b-1",), ClassWord.data, ("Ünïcode name",)),
    ],
)
def test_parse_and_round_trip(topic, path, class_word, name):
    parsed = UnsTopic.from_str(topic)
    assert parsed == UnsTopic(path=path, class_word=class_word, name=name)
    assert str(parsed) == topic
    assert UnsTopic.from_str(str(parsed)) == parsed
    assert parsed.equipment_path == "/".join(path)
    assert parsed.metric_name == "/".join(name)


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("", "no class word"),
        ("acme", "no class word"),
        ("acme/dallas/temp", "no class word (data, mes, kpi, cmd, alarm)"),
        ("data/x", "starts with the class word 'data'"),
        ("acme/data", "nothing after the class word 'data'"),
        ("acme/data/", "name segment 1 is empty"),
        ("acme/data/a//b", "name segment 2 is empty"),
        ("acme/data/a/+", "name segment 2 '+' contains '+'"),
        ("acme/data/a#b", "name segment 1 'a#b' contains '#'"),
        ("acme/data/a\x00", "contains '\\x00'"),
        ("Acme/data/x", "equipment level 1 'Acme' is not a slug"),
        ("acme/dal las/data/x", "equipment level 2 'dal las' is not a slug"),
        ("acme//data/x", "equipment level 2 '' is not a slug"),
        ("-acme/data/x", "equipment level 1 '-acme' is not a slug"),
        ("a/b/c/d/e/f/data/x", "6 equipment levels; 1 to 5 are allowed"),
        (f"{'a' * 65}/data/x", "is not a slug"),
    ],
)
def test_from_str_rejects(topic, reason):
    with pytest.raises(TopicError) as info:
        UnsTopic.from_str(topic)
    assert reason in info.value.reason
    assert info.value.topic == topic
    assert isinstance(info.value, ValueError)
    assert repr(topic) in str(info.value)


@pytest.mark.parametrize(
    ("path", "class_word", "name", "reason"),
    [
        ((), ClassWord.data, ("x",), "0 equipment levels"),
        (("a", "b", "c", "d", "e", "f"), ClassWord.data, ("x",), "6 equipment levels"),
        (("acme", "kpi"), ClassWord.data, ("x",), "equipment level 2 'kpi' is a reserved class word"),
        (("acme",), ClassWord.data, (), "no name after the class word"),
        (("acme",), "nope", ("x",), "class word 'nope' is not one of data, mes, kpi, cmd, alarm"),
    ],
)
def test_constructor_validates(path, class_word, name, reason):
    with pytest.raises(TopicError, match=reason):
        UnsTopic(path=path, class_word=class_word, name=name)


@pytest.mark.parametrize(
    ("path", "metric", "class_word", "expected"),
    [
        (
            "acme/dallas/packaging/line1/filler",
            "Production/GoodCount",
            ClassWord.data,
            "acme/dallas/packaging/line1/filler/data/Production/GoodCount",
        ),
        ("acme/dallas", "Energy", ClassWord.data, "acme/dallas/data/Energy"),
        ("acme/dallas/packaging/line3", "oee", ClassWord.kpi, "acme/dallas/packaging/line3/kpi/oee"),
        ("acme/unbound/g/n/d", "Node Control/Rebirth", ClassWord.data, "acme/unbound/g/n/d/data/Node Control/Rebirth"),
    ],
)
def test_for_metric(path, metric, class_word, expected):
    topic = UnsTopic.for_metric(path, metric, class_word)
    assert str(topic) == expected
    assert UnsTopic.from_str(expected) == topic


@pytest.mark.parametrize(
    ("metric", "reason"),
    [
        ("", "name segment 1 is empty"),
        ("/Temp", "name segment 1 is empty"),
        ("Temp/", "name segment 2 is empty"),
        ("a//b", "name segment 2 is empty"),
        ("Temp+", "contains '+'"),
        ("Line/#", "contains '#'"),
    ],
)
def test_for_metric_rejects(metric, reason):
    with pytest.raises(TopicError) as info:
        UnsTopic.for_metric("acme/dallas", metric)
    assert reason in info.value.reason


def test_for_metric_default_class_word_is_data():
    assert UnsTopic.for_metric("acme", "x").class_word is ClassWord.data


def test_topic_is_frozen_and_hashable():
    topic = UnsTopic.from_str("acme/data/x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        topic.path = ("other",)  # type: ignore[misc]
    assert {topic: 1}[UnsTopic.from_str("acme/data/x")] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a", True),
        ("line-1_b", True),
        ("0", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("A", False),
        ("_a", False),
        ("-a", False),
        ("", False),
        ("a b", False),
        ("a.b", False),
    ],
)
def test_is_slug(text, expected):
    assert is_slug(text) is expected


_levels = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}\Z").filter(
    lambda level: level not in {"data", "mes", "kpi", "cmd"}
)
_segments = st.text(st.characters(exclude_characters="/+#\x00"), min_size=1, max_size=12)


@given(
    path=st.lists(_levels, min_size=1, max_size=5),
    class_word=st.sampled_from(ClassWord),
    name=st.lists(_segments, min_size=1, max_size=4),
)
def test_round_trip_property(path, class_word, name):
    topic = UnsTopic(path=tuple(path), class_word=class_word, name=tuple(name))
    assert UnsTopic.from_str(str(topic)) == topic
    assert UnsTopic.for_metric(topic.equipment_path, topic.metric_name, class_word) == topic


def test_at_every_depth_gives_one_filter_per_equipment_depth() -> None:
    assert at_every_depth("mes", "+") == ("+/mes/+", "+/+/mes/+", "+/+/+/mes/+", "+/+/+/+/mes/+", "+/+/+/+/+/mes/+")
    for depth, topic_filter in enumerate(at_every_depth("alarm", "+"), start=1):
        topic = UnsTopic.from_str(topic_filter.replace("+", "x"))  # each a valid UNS topic's shape
        assert (len(topic.path), topic.class_word) == (depth, ClassWord.alarm)
