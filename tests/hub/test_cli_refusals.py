"""``uns`` commands refusing settings that cannot run, each naming the setting and what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.cli import EXIT_CONFIG, main


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ([], "no enabled bridge in the settings (--config FILE)"),  # was "...of that kind", with no kind asked
        (["opcua"], "no enabled bridge of kind opcua in the settings (--config FILE)"),
    ],
)
def test_uns_bridge_without_a_bridge_to_run_says_where_to_add_one(
    kind: list[str], said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in [key for key in os.environ if key.startswith("UNS_")]:
        monkeypatch.delenv(key)
    assert main(["bridge", *kind, "--data-dir", str(tmp_path)]) == EXIT_CONFIG
    assert (
        capsys.readouterr().err == f"uns bridge: settings: bridges: {said}: add one under bridges: (docs/bridges.md)\n"
    )
