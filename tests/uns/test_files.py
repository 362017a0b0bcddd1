"""uns.files.replace_file: the whole file or nothing, with the permissions asked for, no scratch left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.exports import assert_all_is_honest
from uns.files import replace_file


def test_a_file_is_replaced_whole_with_the_mode_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text("old")
    path.chmod(0o644)
    replace_file(path, "new", mode=0o600)
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    replace_file(path, b"bytes too", fsync=True)
    assert path.read_bytes() == b"bytes too"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # no mode: a new file's, under the umask
    assert [p.name for p in tmp_path.iterdir()] == ["accounts.json"]


def test_a_failed_write_leaves_the_old_file_and_no_scratch(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(TypeError):
        replace_file(path, 42)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_exports() -> None:
    assert_all_is_honest("uns.files")
