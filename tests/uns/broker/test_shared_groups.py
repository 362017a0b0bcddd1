"""Shared subscription groups (uns/broker/shared.py): parsing, membership and round-robin choice."""

from __future__ import annotations

import pytest

from uns.broker.shared import SharedSubscriptions, parse_shared


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("$share/g/a/b", ("g", "a/b")),
        ("$share/g/#", ("g", "#")),
        ("$share/hist-1/acme/+/data/#", ("hist-1", "acme/+/data/#")),
        ("a/b", None),
        ("$SYS/x", None),
    ],
)
def test_parse_shared(text: str, parsed: tuple[str, str] | None) -> None:
    assert parse_shared(text) == parsed


@pytest.mark.parametrize("text", ["$share/g", "$share//a", "$share/g+/a", "$share/#/a", "$share/g/a/#/b", "$share/g/"])
def test_malformed_shared_subscriptions_name_the_string(text: str) -> None:
    problem = parse_shared(text)
    assert isinstance(problem, str)
    assert repr(text) in problem


def test_round_robin_skips_members_not_accepted_and_keeps_its_place() -> None:
    shared: SharedSubscriptions[str] = SharedSubscriptions()
    for member, qos in (("a", 1), ("b", 2), ("c", 0)):
        shared.add("g", "x/#", member, qos)
    (group,) = shared.matching("x/1")
    picks = [group.pick(lambda m: True) for _ in range(4)]
    assert picks == [("a", 1), ("b", 2), ("c", 0), ("a", 1)]
    assert [group.pick(lambda m: m != "b") for _ in range(3)] == [("c", 0), ("a", 1), ("c", 0)]
    assert group.pick(lambda m: True, exclude="a") == ("b", 2)
    assert group.pick(lambda m: False) is None


def test_groups_are_named_by_share_name_and_filter() -> None:
    shared: SharedSubscriptions[str] = SharedSubscriptions()
    shared.add("g", "x/#", "a", 1)
    shared.add("g", "x/+", "a", 1)
    shared.add("h", "x/#", "b", 1)
    assert sorted(g.text for g in shared.matching("x/1")) == ["$share/g/x/#", "$share/g/x/+", "$share/h/x/#"]
    assert shared.matching("y/1") == ()
    assert shared.remove("g", "x/+", "a")
    assert not shared.remove("g", "x/+", "a")
    assert sorted(shared.remove_all("a")) == ["$share/g/x/#"]
    assert [g.text for g in shared.matching("x/1")] == ["$share/h/x/#"]
    shared.remove_all("b")
    assert not shared
