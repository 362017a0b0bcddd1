"""A rules list is refused whole, with errors naming the rule, the field and the unknown topic."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.uns.rules.harness import RULES
from uns.rules.check import RulesRefused, check_rules, plant_targets
from uns.settings import load_plant

PLANT = load_plant(None)
FILLER = "acme/dallas/bottling/line1/filler"


def _alarm(path: str = FILLER) -> dict[str, object]:
    return {"kind": "alarm", "path": path, "name": "x"}


def _problems(rules: list[object]) -> list[str]:
    with pytest.raises(RulesRefused) as caught:
        check_rules(RULES.validate_python(rules), PLANT)
    return [str(p) for p in caught.value.problems]


def test_a_good_set_passes() -> None:
    rules: list[object] = [
        {"name": "a", "trigger": {"kind": "value", "topic": f"{FILLER}/data/Temp", "above": 1}, "actions": [_alarm()]},
        {
            "name": "b",
            "trigger": {"kind": "mes", "event": "downtime", "path": "acme/dallas/+/+/+"},
            "actions": [_alarm("${path}")],
        },
        {
            "name": "c",
            "trigger": {"kind": "topic", "filter": "acme/+/+/+/+/data/#"},
            "condition": "value > 3",
            "actions": [_alarm()],
        },
    ]
    check_rules(RULES.validate_python(rules), PLANT)


def test_unknown_topics_paths_bad_filters_duplicates_and_conditions_are_all_named() -> None:
    problems = _problems(
        [
            {
                "name": "a",
                "trigger": {"kind": "value", "topic": "acme/dallas/bottling/line1/filer/data/Temp", "above": 1},
                "actions": [_alarm()],
            },
            {"name": "a", "trigger": {"kind": "topic", "filter": "acme/#/data"}, "actions": [_alarm()]},
            {
                "name": "b",
                "trigger": {"kind": "mes", "event": "order_completed", "path": "acme/austin/+"},
                "actions": [_alarm("acme/dallas/nowhere")],
            },
            {
                "name": "c",
                "trigger": {"kind": "topic", "filter": "x/#"},
                "condition": "value.real > 1",
                "actions": [_alarm()],
            },
        ]
    )
    assert problems[0] == (
        "settings: rules.a.trigger.topic: no equipment of the plant file at 'acme/dallas/bottling/line1/filer'; "
        "did you mean 'acme/dallas/bottling/line1/filler'? (got 'acme/dallas/bottling/line1/filer')"
    )
    assert problems[1] == "settings: rules.a.name: two rules have this name"
    assert problems[2].startswith("settings: rules.a.trigger.filter: topic filter 'acme/#/data': '#' must be")
    assert problems[3].startswith("settings: rules.b.trigger.path: no equipment of the plant file at 'acme/austin/+'")
    assert problems[4].startswith(
        "settings: rules.b.actions[0].path: no equipment of the plant file at 'acme/dallas/nowhere'"
    )
    assert problems[5].startswith("settings: rules.c.condition: expression 'value.real > 1': column")
    assert len(problems) == 6


@pytest.mark.parametrize(
    ("rule", "where"),
    [
        ({"kind": "cron", "schedule": "61 * * * *"}, "trigger.cron.schedule"),
        ({"kind": "cron", "schedule": "0 6 * * *", "timezone": "Mars/Olympus"}, "trigger.cron.timezone"),
        ({"kind": "value", "topic": "a/data/b"}, "trigger.value"),
        ({"kind": "value", "topic": "a/data/b", "above": 1, "below": 0}, "trigger.value"),
        ({"kind": "mes", "event": "shift_started"}, "trigger.mes.event"),
        ({"kind": "nope"}, "trigger"),
    ],
)
def test_the_model_names_the_field(rule: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RULES.validate_python([{"name": "r", "trigger": rule, "actions": [_alarm()]}])
    locations = [".".join(str(p) for p in e["loc"][1:]) for e in caught.value.errors()]
    assert any(loc.startswith(where) for loc in locations), locations


def test_plant_targets_resolve_the_bound_device() -> None:
    targets = plant_targets(PLANT)
    assert targets(FILLER) == ("acme-dallas", "modbus-bottling", "filler")
    assert targets("acme/dallas/nowhere") is None
