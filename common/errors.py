"""The one base class for user mistakes, which the `emofl` command reports in one line.

Every error a user can cause (a bad path, malformed data, an impossible setting, an unreachable
service) derives from `UserError`; `emofl` reports it in one line and exits with status 2.
Anything else that escapes a command is a fault in emofl: `emofl` says so in one line, keeps the
traceback in a log file and exits with status 1 (see docs/architecture.md).
"""


class UserError(Exception):
    """A mistake of the user's (bad path, malformed data, impossible setting), as opposed to a
    fault in emofl: the message is one line naming what is wrong; `emofl` exits with status 2."""


class SettingsError(UserError, ValueError):
    """A value given for a setting (a command-line option, a run-config key) that is not allowed;
    the message names the setting and the value. A ValueError too, since it is one: a bad value."""
