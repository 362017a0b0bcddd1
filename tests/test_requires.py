"""The missing-component mechanism (tests/fixtures/requires.py), run on small test files and on a real one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.exports import assert_all_is_honest
from tests.fixtures.requires import COMPONENTS, MISSING_ENV, STRICT_ENV, require

REPO = Path(__file__).parents[1]

_SAMPLE = """
import pytest
from tests.fixtures.requires import require

def test_calls_require():
    require("mosquitto")

@pytest.mark.requires("node", "peer-packages")
def test_marked():
    pass

@pytest.fixture(scope="module")
def browser_path():
    return require("chromium")

def test_one(browser_path):
    pass

def test_two(browser_path):
    pass

def test_needs_nothing():
    pass
"""


@pytest.fixture
def sample(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makepyfile(test_sample=_SAMPLE)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv(MISSING_ENV, "mosquitto,node,chromium")
    monkeypatch.delenv(STRICT_ENV, raising=False)
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "tests.fixtures.requires", "-p", "no:cacheprovider", "-rs", *args)


def test_missing_component_skips_naming_the_install_and_is_summarised_once(sample: pytest.Pytester) -> None:
    result = _run(sample)
    result.assert_outcomes(passed=1, skipped=4)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*= missing system components =*",
            "mosquitto: needs Debian package mosquitto: apt-get install mosquitto (1 skipped)",
            "node: needs Debian packages nodejs and npm: apt-get install nodejs npm, then npm ci *(1 skipped)",
            "chromium: needs Debian package chromium: apt-get install chromium (2 skipped)",
            f"({STRICT_ENV}=1, as in CI, makes these skips fail the run)",
        ]
    )
    # one line per component however many tests it skipped
    assert sum(line.startswith("chromium: ") for line in result.outlines) == 1
    result.stdout.fnmatch_lines(["SKIPPED *: needs Debian package mosquitto: apt-get install mosquitto"])


def test_strict_mode_fails_the_run_on_a_missing_component(
    sample: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STRICT_ENV, "1")
    result = _run(sample)
    result.assert_outcomes(passed=1, failed=1, errors=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*= missing system components =*",
            "mosquitto: needs Debian package mosquitto: apt-get install mosquitto (1 failed)",
            "node: needs Debian packages nodejs and npm: apt-get install nodejs npm, then npm ci *(1 error)",
            "chromium: needs Debian package chromium: apt-get install chromium (2 errors)",
        ]
    )
    result.stdout.no_fnmatch_line("*makes these skips fail the run*")


def test_strict_mode_with_everything_installed_passes(sample: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = [name for name, component in COMPONENTS.items() if not component.find()]
    if missing:  # this check is about the mechanism, not the machine: the other tests cover a missing one
        pytest.skip(f"this machine lacks {missing}")
    monkeypatch.setenv(STRICT_ENV, "1")
    monkeypatch.delenv(MISSING_ENV)
    result = _run(sample)
    result.assert_outcomes(passed=5)
    result.stdout.no_fnmatch_line("*missing system components*")


def test_a_fresh_machine_without_mosquitto_skips_the_repo_tests_instead_of_erroring(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the repo's own conftest and session fixture (this test of tests/test_fixtures.py uses the `mosquitto` fixture);
    # one xdist worker, not the configured two: the skip still comes from a worker and is summarised by the
    # controller as in a real run, without a second worker's seconds of start-up for a one-test run
    monkeypatch.setenv(MISSING_ENV, "mosquitto")
    monkeypatch.delenv(STRICT_ENV, raising=False)
    monkeypatch.chdir(REPO)
    result = pytester.runpytest_subprocess(
        f"{REPO / 'tests' / 'test_fixtures.py'}::test_mosquitto_listens_on_loopback",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(REPO),
        "-n",
        "1",
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["mosquitto: needs Debian package mosquitto: apt-get install mosquitto (1 skipped)"])


def test_every_component_names_a_package_and_an_install_command() -> None:
    for name, component in COMPONENTS.items():
        assert component.name == name
        assert component.install.startswith(("apt-get install ", "npm ci ")), name
        assert component.reason == f"needs {component.package}: {component.install}"
    assert len({c.reason for c in COMPONENTS.values()}) == len(COMPONENTS)  # the summary tells them apart


def test_an_unknown_component_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown system component 'mosquito': add it to COMPONENTS"):
        require("mosquito")


def test_exports() -> None:
    assert_all_is_honest("tests.fixtures.requires")
