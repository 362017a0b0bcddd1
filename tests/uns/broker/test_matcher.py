import pytest

from uns.broker.matcher import SubscriptionIndex, filter_covers, filter_error, topic_error, topic_matches


@pytest.mark.parametrize(
    ("topic", "topic_filter", "expected"),
    [
        ("a/b/c", "a/b/c", True),
        ("a/b/c", "a/b", False),
        ("a/b/c", "a/+/c", True),
        ("a/b/c", "a/+", False),
        ("a/b/c", "a/#", True),
        ("a", "a/#", True),  # '#' matches the parent level too
        ("a/b/c", "#", True),
        ("a/b/c", "+/+/+", True),
        ("a/b/c", "+/+", False),
        ("/a", "+/a", True),  # empty first level
        ("a//c", "a/+/c", True),
        ("$SYS/x", "#", False),  # [MQTT-4.7.2-1]
        ("$SYS/x", "+/x", False),
        ("$SYS/x", "$SYS/#", True),
        ("spBv1.0/g/NCMD/n", "spBv1.0/+/NCMD/#", True),
    ],
)
def test_topic_matches(topic: str, topic_filter: str, expected: bool) -> None:
    assert topic_matches(topic, topic_filter) is expected


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("#", "a/b", True),
        ("#", "#", True),
        ("a/#", "a/+/c", True),
        ("a/#", "a", True),
        ("a/+", "a/b", True),
        ("a/+", "a/+", True),
        ("a/+", "a/#", False),  # inner reaches deeper than outer
        ("a/+", "a/b/c", False),
        ("a/b", "a/+", False),
        ("+/mes/#", "line/mes/count", True),
        ("#", "$SYS/#", False),
        ("$SYS/#", "$SYS/broker", True),
        ("spBv1.0/g/DCMD/n/+", "spBv1.0/g/DCMD/n/#", False),
        ("spBv1.0/g/DCMD/n/+", "spBv1.0/g/DCMD/n/dev", True),
    ],
)
def test_filter_covers(outer: str, inner: str, expected: bool) -> None:
    assert filter_covers(outer, inner) is expected


@pytest.mark.parametrize(
    ("topic_filter", "fragment"),
    [("", "empty"), ("a/#/b", "'#'"), ("a#", "'#'"), ("a/b+", "'+'"), ("a/+/#", None), ("#", None)],
)
def test_filter_error(topic_filter: str, fragment: str | None) -> None:
    problem = filter_error(topic_filter)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None
        assert fragment in problem


@pytest.mark.parametrize(("topic", "bad"), [("a/b", False), ("", True), ("a/+", True), ("a/#", True)])
def test_topic_error(topic: str, bad: bool) -> None:
    assert (topic_error(topic) is not None) is bad


def test_index_caches_until_a_subscription_changes() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("a/#", "x", 1)
    index.add("a/b", "x", 2)
    index.add("a/+", "y", 0)
    assert dict(index.match("a/b")) == {"x": 2, "y": 0}  # highest QoS per subscriber
    assert index.match("a/b") is index.match("a/b")  # cached
    index.remove("a/+", "y")
    assert dict(index.match("a/b")) == {"x": 2}
    index.remove_all("x")
    assert index.match("a/b") == ()
    assert list(index.filters()) == []
