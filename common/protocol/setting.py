"""What a setting is: its type, default, help text, allowed values and command-line flag.

A settings dataclass declares each field with `setting(...)`; `settings_of` reads the fields
back as `Setting`s. That one declaration serves the dataclass itself (validation on
construction), run configs (parsing Flower's primitive values) and the `emofl` options generated
from it, so no default, range or help text is written twice.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, get_type_hints

from emofl.common.errors import SettingsError

_SPEC = "emofl.setting"
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_KIND_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


@dataclass(frozen=True)
class Bound:
    """The values a number setting allows, and how an error message says so."""

    text: str
    allows: Callable[[float], bool]

    def check(self, value: float, label: str) -> None:
        """Raise SettingsError naming `label` and `value` unless the bound allows `value`."""
        if not self.allows(value):
            raise SettingsError(f"{label} must be {self.text}, got {value!r}")


AT_LEAST_ONE = Bound("at least 1", lambda v: v >= 1)
POSITIVE = Bound("positive", lambda v: v > 0)
NON_NEGATIVE = Bound("0 or more", lambda v: v >= 0)
OPEN_UNIT_INTERVAL = Bound("in (0, 1)", lambda v: 0 < v < 1)


@dataclass(frozen=True)
class Setting:
    """One setting. `name` is the field name; `key` its kebab-case run-config key; `option` its
    command-line flag (`flag` where it differs from `--<key>`). A bool setting's option turns
    its default around (`--resume`, `--no-dp`), and its help says what the option does.
    `cli_default` is the option's default where it differs from `default` (None: the same);
    settings sharing an `exclusive_group` are mutually exclusive options; `on_cli` is False for
    settings no command-line option sets."""

    help: str
    name: str = ""
    kind: type = str
    default: Any = None
    choices: tuple[str, ...] = ()
    bound: Bound | None = None
    flag: str = ""
    cli_default: Any = None
    exclusive_group: str = ""
    on_cli: bool = True

    @property
    def key(self) -> str:
        return self.name.replace("_", "-")

    @property
    def option(self) -> str:
        if self.flag:
            return self.flag
        return f"--no-{self.key}" if self.kind is bool and self.default else f"--{self.key}"

    @property
    def metavar(self) -> str:
        """The option's value in help texts: its choices, or the flag in capitals."""
        if self.choices:
            return "{" + ",".join(self.choices) + "}"
        return self.option.lstrip("-").replace("-", "_").upper()

    @property
    def option_default(self) -> Any:
        return self.default if self.cli_default is None else self.cli_default

    def parse(self, raw: Any, label: str) -> Any:
        """`raw` (a run-config value: bool, int, float or str) as this setting's type, checked;
        SettingsError naming `label` and the value otherwise."""
        value = _convert(raw, self.kind)
        if value is None:
            raise SettingsError(f"{label} must be {_KIND_WORDS[self.kind]}, got {raw!r}")
        self.check(value, label)
        return value

    def check(self, value: Any, label: str) -> None:
        """Raise SettingsError naming `label` and `value` unless the setting allows `value`."""
        if not _is_kind(value, self.kind):
            raise SettingsError(f"{label} must be {_KIND_WORDS[self.kind]}, got {value!r}")
        if self.kind is float and not math.isfinite(value):
            raise SettingsError(f"{label} must be a finite number, got {value!r}")
        if self.choices and value not in self.choices:
            raise SettingsError(f"{label} must be one of {', '.join(self.choices)}, "
                                f"got {value!r}")
        if self.bound:
            self.bound.check(value, label)


def setting(default: Any, help: str, **details: Any) -> Any:
    """A dataclass field holding `default`, described by `help` and the `Setting` `details`
    (choices, bound, flag, cli_default, exclusive_group, on_cli)."""
    return field(default=default, metadata={_SPEC: Setting(help=help, **details)})


def settings_of(cls: type) -> tuple[Setting, ...]:
    """The `Setting`s of a dataclass declared with `setting(...)`, in field order."""
    hints = get_type_hints(cls)
    return tuple(replace(f.metadata[_SPEC], name=f.name, kind=hints[f.name], default=f.default)
                 for f in fields(cls))


def _is_kind(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _convert(raw: Any, kind: type) -> Any:
    """`raw` as `kind`, or None when it does not denote one (3.5 is no integer, "yes" is True)."""
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        return True if text in _TRUE else False if text in _FALSE else None
    if kind is str:
        return raw if isinstance(raw, str) else str(raw)
    if isinstance(raw, bool):
        return None
    try:
        return float(raw) if kind is float else _integer(raw)
    except (TypeError, ValueError):
        return None


def _integer(raw: Any) -> int:
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError(raw)
        return int(raw)
    return int(raw)
