"""Writes that never leave a half-written file behind: write a temporary sibling, then rename.

A write that fails (a full disk, a read-only file system, a file where a folder should be)
removes its temporary file, leaves any earlier version of the file as it was, and raises a
`WriteError` whose one line names the path and the reason, so a rerun finds nothing in its way.
JSON is written strictly: NaN and infinities become null, which every JSON reader accepts.
Reading a `torch_save`d file back goes through `torch_load`, which says a damaged file is one.
"""

import json
import math
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from emofl.common.errors import UserError


class WriteError(UserError):
    """A file or folder could not be written; the message names the path and the reason."""


class DamagedFileError(UserError):
    """A file that should hold saved state cannot be read back (truncated, overwritten, or not
    this program's); the message names the file and what to do."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(err: OSError) -> str:
    """What went wrong, in the operating system's words: "no space left on device"."""
    return (err.strerror or str(err) or type(err).__name__).lower()


def _file_in_the_way(folder: Path) -> Path:
    """The outermost of `folder` and its parents that exists but is not a folder."""
    for candidate in [*reversed(folder.parents), folder]:
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return folder


def make_dir(folder: str | Path) -> Path:
    """Create `folder` and its parents (nothing when it exists); WriteError naming it when a
    file is in the way or the file system refuses."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise WriteError(f"cannot create folder {folder}: "
                         f"{_file_in_the_way(folder)} is a file, not a folder") from None
    except OSError as err:
        raise WriteError(f"cannot create folder {folder}: {_reason(err)}") from None
    return folder


# Set by `stop_writes`: this process is being ended, and its files stay as they are now.
_writes_stopped = threading.Event()


def stop_writes() -> None:
    """Refuse every write this process starts from now on (WriteError; a write under way still
    completes): for a process being ended, so that what its threads would record in its last
    moments (a round cut short by the ending, as a failed one) replaces nothing saved."""
    _writes_stopped.set()


def _replace_with(path: Path, write, private: bool = False) -> None:
    if _writes_stopped.is_set():
        raise WriteError(f"not writing {path}: the process is ending")
    make_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise WriteError(f"cannot write {path}: {_reason(err)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if not private:  # mkstemp makes 0600; give other files a normal file's mode
                os.fchmod(handle.fileno(), 0o666 & ~_current_umask())
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise WriteError(f"cannot write {path}: {_reason(err)}") from None
        raise


def strict_json_value(data: Any) -> Any:
    """`data` with every NaN or infinite float (in nested dicts, lists and tuples) replaced by
    None, so that it is valid JSON, which has no such numbers."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: strict_json_value(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json_value(value) for value in data]
    return data


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write `data` as indented, strict JSON (non-finite floats as null)."""
    payload = (json.dumps(strict_json_value(data), indent=2, allow_nan=False) + "\n").encode()
    _replace_with(Path(path), lambda handle: handle.write(payload))


def write_bytes(path: str | Path, data: bytes, private: bool = False) -> None:
    """Atomically write raw bytes; `private` keeps the file readable by its owner only."""
    _replace_with(Path(path), lambda handle: handle.write(data), private=private)


def torch_save(path: str | Path, obj: Any) -> None:
    """Atomically `torch.save` an object."""
    import torch  # here, not at the top: the device's inference path runs without torch

    _replace_with(Path(path), lambda handle: torch.save(obj, handle))


def _load_failure(err: Exception) -> str:
    """Why torch could not load a file: the OS's words, or torch's first sentence (with the
    error's type where its text alone says nothing, as KeyError's "101")."""
    if isinstance(err, OSError):
        return _reason(err)
    text = " ".join(str(err).split()).split(". ")[0][:160]
    return text if isinstance(err, RuntimeError) else f"{type(err).__name__} {text}".strip()


def torch_load(path: str | Path, remedy: str) -> Any:
    """What `torch_save` wrote to `path` (tensors and plain containers only: nothing is
    executed); DamagedFileError "<path> is damaged: <reason>; <remedy>" when it cannot be read."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not its own
        raise DamagedFileError(f"{path} is damaged: {_load_failure(err)}; {remedy}") from None
