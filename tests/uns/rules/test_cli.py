"""``uns rules check FILE``: every problem named with its rule, field and topic (exit 2), or what would change."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.cli import main

FILLER = "acme/dallas/bottling/line1/filler"


def _check(tmp_path: Path, text: str, *flags: str) -> int:
    file = tmp_path / "next.yaml"
    file.write_text(text)
    return main(["rules", "--data-dir", str(tmp_path), "check", str(file), *flags])


def test_a_valid_file_is_listed_against_the_demo_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = f"""
rules:
  - name: too-hot
    trigger: {{kind: value, topic: {FILLER}/data/Temperature, above: 80}}
    actions: [{{kind: alarm, path: "${{path}}", name: too-hot}}]
  - name: machine-faulted
    enabled: false
    trigger: {{kind: topic, filter: "acme/+/+/+/+/mes/machine_state"}}
    actions: [{{kind: alarm, path: "${{path}}", name: faulted}}]
"""
    assert _check(tmp_path, text) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("next.yaml: valid: 2 rules, 1 enabled")
    # the demo runs machine-faulted and the disabled order webhook: the file changes one and drops the other
    assert out[2:] == ["  + too-hot", "  - order-completed-webhook", "  ~ machine-faulted"]


@pytest.mark.parametrize(
    "text",
    [
        "rules: []\n",  # was compared with the demo's rules: none run when the settings say rules: []
        "transforms: []\n",  # was read as no rules: a reload of it runs the demo's
    ],
)
def test_the_check_reads_the_rules_key_as_start_up_and_reload_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    settings = tmp_path / "hub.yaml"
    settings.write_text(text)
    file = tmp_path / "next.yaml"
    file.write_text(text)
    assert main(["rules", "--config", str(settings), "--data-dir", str(tmp_path), "check", str(file)]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == ["  no change"]


def test_every_problem_is_named_with_rule_field_and_topic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = f"""
rules:
  - name: a
    trigger: {{kind: value, topic: acme/dallas/bottling/line1/filer/data/Temp, above: 1}}
    actions: [{{kind: alarm, path: {FILLER}, name: x}}]
  - name: a
    trigger: {{kind: topic, filter: "acme/#/data"}}
    condition: "value.real > 1"
    actions: [{{kind: alarm, path: acme/dallas/nowhere, name: x}}]
"""
    assert _check(tmp_path, text, "--no-demo") == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("next.yaml: refused, 5 problem(s):")
    assert err[1].startswith("  settings: rules.a.trigger.topic: no equipment of the plant file at")
    assert "did you mean 'acme/dallas/bottling/line1/filler'?" in err[1]
    assert err[2] == "  settings: rules.a.name: two rules have this name"
    assert err[3].startswith("  settings: rules.a.trigger.filter: topic filter 'acme/#/data'")
    assert err[4].startswith("  settings: rules.a.condition: expression 'value.real > 1': column")
    assert err[5].startswith(
        "  settings: rules.a.actions[0].path: no equipment of the plant file at 'acme/dallas/nowhere'"
    )


def test_field_errors_are_all_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = """
rules:
  - name: a
    trigger: {kind: value, topic: acme/x/data/y}
    actions: []
  - name: B
    trigger: {kind: nope}
    actions: []
"""
    assert _check(tmp_path, text, "--no-demo") == 2
    err = capsys.readouterr().err
    assert "rules[0].trigger.value: give exactly one of above or below" in err
    assert "rules[1].name: 'B' is not a slug" in err
    assert "rules[1].trigger: Input tag 'nope' found using 'kind'" in err


def test_a_missing_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--data-dir", str(tmp_path), "check", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: no such file" in capsys.readouterr().err
