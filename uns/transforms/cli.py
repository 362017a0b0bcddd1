"""``uns transforms check FILE``: validate a settings file's computed tags and show what a reload would change."""

from __future__ import annotations

import argparse
from pathlib import Path

from model.config import Settings
from model.equipment import Plant
from uns.transforms.config import RUNNING_FILE, diff_tags, read_running, read_transforms, with_builtin
from uns.transforms.demo import builtin_tags
from uns.transforms.plan import plan_tags

__all__ = ["add_check_parser", "add_transforms_parser", "run_transforms"]


def add_check_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], *, command: str, what: str, description: str
) -> argparse.ArgumentParser:
    """``uns <command> check FILE [--no-demo]``: the check of one list section (``transforms:``, ``rules:``)."""
    parser = subparsers.add_parser(
        command,
        help=f"check a settings file's {what} ({command}:) and what a reload would change",
        description=description,
    )
    actions = parser.add_subparsers(dest=f"{command}_action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help=f"validate FILE's {command}: against the plant; list added/removed/changed"
    )
    check.add_argument("file", type=Path, metavar="FILE", help=f"settings YAML holding the new {command}:")
    check.add_argument(
        "--no-demo", dest="demo", action="store_false", default=None, help=f"as `uns up --no-demo`: no demo {what}"
    )
    return parser


def add_transforms_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """``uns transforms check FILE``."""
    return add_check_parser(
        subparsers,
        command="transforms",
        what="computed tags",
        description="Apply a checked file with SIGHUP to `uns up` (kill -HUP <pid>): it reloads transforms: from "
        "its --config file and keeps the running tags when the new ones are invalid.",
    )


def run_transforms(args: argparse.Namespace, settings: Settings, plant: Plant) -> int:
    """Print the check; raises ``ConfigError`` (exit 2) naming the tag and field when FILE is invalid."""
    # with the demo, its built-in tags run beside the file's, as in `uns up`
    builtin = builtin_tags(settings)
    tags = with_builtin(read_transforms(args.file), builtin)
    plans = plan_tags(tags, plant=plant, source=str(args.file))
    running = read_running(settings.data_dir)
    if running is None:
        base, against = with_builtin(settings.transforms, builtin), "the settings' transforms: (no hub has run here)"
    else:
        base, against = running, f"the running tags ({settings.data_dir / RUNNING_FILE})"
    print(f"{args.file}: valid: {len(tags)} computed tags, {len(plans)} enabled")
    print(f"compared with {against}:")
    for line in diff_tags(base, tags).lines():
        print(f"  {line}")
    return 0
