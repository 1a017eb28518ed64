"""The `emofl` command: the sub-commands of `emofl.commands`, and how a command ends.

- Success: the result as JSON on stdout (or as the command's printer shows it), exit 0.
- A user mistake (a `UserError`, or an OSError about one of the user's paths): one line on
  stderr naming the problem, exit 2; nothing already written is touched.
- Anything else is a fault in emofl: one line on stderr saying so, the full traceback in a log
  file (inside the run folder when the command has one and it exists, else in the temporary
  directory), exit 1.
- Ctrl-C: one line on stderr saying what is kept, exit 130; what was saved before is untouched
  (`simulate` ends itself and Ray this way once Ray runs: see its runner).
"""

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

from emofl.commands import (
    audit,
    deployment,
    export,
    federation,
    inference,
    keys,
    meeting,
    models,
)
from emofl.common.errors import UserError

INTERNAL_ERROR_EXIT = 1
USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130
# OSErrors that come from a path the user gave; any OSError naming a file is one too.
PATH_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
               NotADirectoryError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emofl", description="Privacy-preserving federated facial emotion recognition.")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (federation, models, export, keys, inference, meeting, deployment, audit):
        group.add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.handler(args)
    except KeyboardInterrupt:  # `simulate` ends itself once Ray runs (it says what is kept)
        print(f"emofl {args.command}: interrupted; what was saved before is kept",
              file=sys.stderr)
        return INTERRUPTED_EXIT
    except Exception as err:
        return _report_failure(args, err, sys.argv[1:] if argv is None else argv)
    printer = getattr(args, "printer", None)
    if printer:
        printer(result)
    else:
        print(json.dumps(result, indent=2))
    return 0


def is_user_error(err: Exception) -> bool:
    """Whether `err` is the user's mistake rather than a fault in emofl."""
    if isinstance(err, (UserError, *PATH_ERRORS)):
        return True
    return isinstance(err, OSError) and err.filename is not None


def _report_failure(args: argparse.Namespace, err: Exception, argv: list[str]) -> int:
    """Report `err` in one line on stderr; the exit status."""
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if is_user_error(err):
        print(f"emofl {args.command}: error: {message or type(err).__name__}", file=sys.stderr)
        return USER_ERROR_EXIT
    folder = args.run_folder(args) if hasattr(args, "run_folder") else None
    log = write_traceback(err, args.command, argv, folder)
    where = f"traceback in {log}" if log else "no traceback file could be written"
    what = f"{type(err).__name__}: {message}" if message else type(err).__name__
    print(f"emofl {args.command}: internal error: {what} ({where})", file=sys.stderr)
    return INTERNAL_ERROR_EXIT


def write_traceback(err: Exception, command: str, argv: list[str],
                    run_folder: str | None) -> Path | None:
    """Write the command line and `err`'s traceback to a new `emofl-<command>-<time>.log` in
    `run_folder` when it is an existing directory, else in the temporary directory; its path
    (None when neither takes the file)."""
    text = " ".join(["emofl", *argv]) + "\n\n" + "".join(traceback.format_exception(err))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folders = [Path(run_folder)] if run_folder and Path(run_folder).is_dir() else []
    for folder in [*folders, Path(tempfile.gettempdir())]:
        for attempt in range(1, 100):
            suffix = "" if attempt == 1 else f"-{attempt}"
            path = folder / f"emofl-{command}-{stamp}{suffix}.log"
            try:
                with path.open("x", encoding="utf-8") as log:
                    log.write(text)
                return path
            except FileExistsError:
                continue
            except OSError:
                break
    return None


if __name__ == "__main__":
    sys.exit(main())
