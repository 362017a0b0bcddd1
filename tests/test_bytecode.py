"""The test run caches bytecode for itself and every process it starts, also under PYTHONDONTWRITEBYTECODE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.exports import assert_all_is_honest

_REPO = Path(__file__).parents[1]
# a child that applies cache_bytecode, then starts a grandchild importing the probe module with its environment
_SCRIPT = """
import os, subprocess, sys
from pathlib import Path
from tests.fixtures.bytecode import cache_bytecode
print(cache_bytecode(Path(sys.argv[1])))
subprocess.run([sys.executable, "-c", "import probe_module"], check=True, env=os.environ)
"""


def _run(tmp_path: Path, **env: str) -> tuple[str, Path]:
    """Runs _SCRIPT with ``env`` over a clean environment; returns what cache_bytecode answered and the probe's dir."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "probe_module.py").write_text("VALUE = 1\n")
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    full = {**base, "PYTHONPATH": f"{_REPO}{os.pathsep}{source}", **env}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path / "default")],
        env=full, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), source


def _cached(prefix: Path, source: Path) -> list[str]:
    return sorted(p.name for p in (prefix / source.relative_to(source.anchor)).glob("probe_module.*.pyc"))


def test_under_pythondontwritebytecode_children_cache_under_the_default_prefix(tmp_path: Path) -> None:
    answered, source = _run(tmp_path, PYTHONDONTWRITEBYTECODE="1")
    assert answered == str(tmp_path / "default")
    assert _cached(tmp_path / "default", source) == [f"probe_module.{sys.implementation.cache_tag}.pyc"]
    assert not (source / "__pycache__").exists()  # nothing beside the sources


def test_a_pycache_prefix_of_the_user_is_kept(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    answered, source = _run(tmp_path, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=str(mine))
    assert answered == str(mine)
    assert len(_cached(mine, source)) == 1
    assert not (tmp_path / "default").exists()


def test_where_python_writes_bytecode_already_nothing_changes(tmp_path: Path) -> None:
    answered, source = _run(tmp_path)
    assert answered == "None"
    assert len(list((source / "__pycache__").glob("probe_module.*.pyc"))) == 1
    assert not (tmp_path / "default").exists()


def test_this_run_writes_bytecode_and_hands_that_on() -> None:
    # tests/conftest.py applies cache_bytecode before the xdist workers start: this worker inherited it
    assert not sys.dont_write_bytecode
    assert "PYTHONDONTWRITEBYTECODE" not in os.environ


def test_all_is_honest() -> None:
    assert_all_is_honest("tests.fixtures.bytecode")
