"""``uns rules check FILE``: validate a settings file's rules against the plant and show what a reload would change."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.config import Settings
from model.equipment import Plant
from uns.errors import ConfigError
from uns.rules.check import RulesRefused, check_rules
from uns.rules.demo import builtin_rules
from uns.rules.service import diff_rules, read_rules, starting_rules
from uns.transforms.cli import add_check_parser

__all__ = ["add_rules_parser", "run_rules"]

_EXIT_REFUSED = 2  # as every configuration error of the `uns` command


def add_rules_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """``uns rules check FILE``."""
    return add_check_parser(
        subparsers,
        command="rules",
        what="rules",
        description="Apply a checked file with SIGHUP to `uns up` (kill -HUP <pid>), POST /api/rules/reload or the "
        "web UI's Automation page: the running rules stay when the new ones are invalid.",
    )


def run_rules(args: argparse.Namespace, settings: Settings, plant: Plant) -> int:
    """Print the check, or every problem (one per line, naming the rule, the field and the topic) and exit 2.

    Raises:
        ConfigError: FILE cannot be read or is not YAML (the caller prints it and exits 2).
    """
    builtin = builtin_rules(settings, plant)
    try:
        rules = read_rules(args.file, builtin=builtin)  # as a reload reads it
        check_rules(rules, plant)
    except RulesRefused as exc:
        _print_problems(args.file, [str(problem) for problem in exc.problems])
        return _EXIT_REFUSED
    except ConfigError as exc:
        if exc.path:  # one field
            raise
        _print_problems(args.file, str(exc).splitlines()[1:] or [str(exc)])
        return _EXIT_REFUSED
    running = starting_rules(settings, builtin)  # what `uns up` runs now
    enabled = sum(1 for rule in rules if rule.enabled)
    print(f"{args.file}: valid: {len(rules)} rules, {enabled} enabled")
    print("compared with the settings' rules:" if settings.rules else "compared with the rules uns up starts with:")
    for line in diff_rules(running, rules).lines():
        print(f"  {line}")
    return 0


def _print_problems(file: Path, problems: list[str]) -> None:
    print(f"uns rules check: {file}: refused, {len(problems)} problem(s):", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
