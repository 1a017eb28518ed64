"""Writes that never leave a half-written file behind: write a temporary sibling, then rename."""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace_with(path: Path, write, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    if not private:  # mkstemp makes 0600; give other files a normal file's mode
        os.chmod(tmp, 0o666 & ~_current_umask())
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write `data` as indented JSON."""
    payload = (json.dumps(data, indent=2) + "\n").encode()
    _replace_with(Path(path), lambda handle: handle.write(payload))


def write_bytes(path: str | Path, data: bytes, private: bool = False) -> None:
    """Atomically write raw bytes; `private` keeps the file readable by its owner only."""
    _replace_with(Path(path), lambda handle: handle.write(data), private=private)


def torch_save(path: str | Path, obj: Any) -> None:
    """Atomically `torch.save` an object."""
    _replace_with(Path(path), lambda handle: torch.save(obj, handle))
