"""The one YAML-plus-validation loader (settings, plant files and broker.yaml use it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from tests.exports import assert_all_is_honest
from uns.config_file import config_error, read_yaml, validation_problems
from uns.errors import ConfigError


class _Target(BaseModel):
    port: int
    url: str
    password: str


def test_exports() -> None:
    assert_all_is_honest("uns.config_file")


def test_every_problem_is_reported_with_the_value_as_written_and_secrets_redacted(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("port: seventy\nurl: mqtt://user:hunter2@h\npassword: [1]\n")
    data = read_yaml(path, "x.yaml", "create it")
    with pytest.raises(ValidationError) as caught:
        _Target.model_validate(data)
    error = config_error(validation_problems(caught.value, lambda _loc: "x.yaml", data))
    lines = str(error).splitlines()
    assert lines[0] == "x.yaml: 2 problems:"
    assert lines[1].startswith("x.yaml: port: Input should be a valid integer")
    assert "(got 'seventy')" in lines[1]
    assert lines[2].startswith("x.yaml: password: ")
    assert lines[2].endswith("(got '***')")
    assert "hunter2" not in str(error)


def test_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"x.yaml: no such file; create it"):
        read_yaml(tmp_path / "absent.yaml", "x.yaml", "create it")
