"""Checking that a path given as an input names a regular file, before anything reads it.

Reading a FIFO blocks until something writes to it (forever, for one made by mistake), and a
directory or a device fails with an OS error far from the option that named it; so an input
path is checked first, and its problem is said in words: not found, a directory, or not a
regular file.
"""

import stat
from pathlib import Path

from emofl.common.errors import UserError


def input_file_problem(path: str | Path) -> str | None:
    """Why `path` cannot be read as an input file ("not found", "is a directory, not a file",
    "is not a regular file (a FIFO, socket or device)", ...), or None when it is a regular file
    (or a link to one)."""
    try:
        mode = Path(path).stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "not found"
    except PermissionError:
        return "cannot be accessed (permission denied)"
    except OSError as err:
        return f"cannot be accessed ({err.strerror or type(err).__name__})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    return "is not a regular file (a FIFO, socket or device)"


def check_input_file(path: str | Path, what: str,
                     error: type[Exception] = UserError) -> Path:
    """`path` as a Path when it is a regular file; otherwise raise `error` with the one line
    "<what> <problem>: <path>" (e.g. "model file not found: m.pt")."""
    problem = input_file_problem(path)
    if problem:
        raise error(f"{what} {problem}: {path}")
    return Path(path)
