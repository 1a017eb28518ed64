"""What the sub-commands share: options with a range, options generated from a `Setting`,
and the command line a run records."""

import argparse
import shlex
import sys
from collections.abc import Callable, Iterable
from typing import Any

from emofl.common.protocol.setting import Bound, Setting


def bounded(kind: type, bound: Bound) -> Callable[[str], Any]:
    """An argparse type: the text as `kind`, refused unless `bound` allows it."""

    def parse(text: str) -> Any:
        value = kind(text)
        if not bound.allows(value):
            raise argparse.ArgumentTypeError(f"must be {bound.text}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names it in "invalid int value: 'x'"
    return parse


def add_setting_options(parser: argparse.ArgumentParser, settings: Iterable[Setting]) -> None:
    """One option per setting, with its flag, default and help; settings of one exclusive group
    become mutually exclusive options. Values are checked by `setting_values`, after parsing,
    so that a bad one is reported in one line."""
    groups: dict[str, Any] = {}
    for spec in settings:
        target = parser
        if spec.exclusive_group:
            if spec.exclusive_group not in groups:
                groups[spec.exclusive_group] = parser.add_mutually_exclusive_group()
            target = groups[spec.exclusive_group]
        _add_setting_option(target, spec)


def _add_setting_option(parser: Any, spec: Setting) -> None:
    help_text = spec.help.replace("%", "%%")
    if spec.kind is bool:
        action = "store_false" if spec.default else "store_true"
        parser.add_argument(spec.option, dest=spec.name, action=action, help=help_text)
        return
    if spec.option_default != "":
        help_text += " (default: %(default)s)"
    parser.add_argument(spec.option, dest=spec.name, type=spec.kind, default=spec.option_default,
                        metavar=spec.metavar, help=help_text)


def setting_values(args: argparse.Namespace, settings: Iterable[Setting]) -> dict[str, Any]:
    """The parsed value of each setting by field name; SettingsError naming the option of the
    first value the setting does not allow."""
    values = {}
    for spec in settings:
        value = getattr(args, spec.name)
        spec.check(value, spec.option)
        values[spec.name] = value
    return values


def out_folder(args: argparse.Namespace) -> str | None:
    """The `--out` folder of a command that writes a run folder."""
    return args.out


def command_line() -> str:
    """The command that is running, as a shell would take it, for model cards and summaries."""
    return shlex.join(["emofl", *sys.argv[1:]])
