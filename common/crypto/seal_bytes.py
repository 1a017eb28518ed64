"""SEAL objects to and from bytes, for the encrypted-head service's messages.

TenSEAL's low-level SEAL binding (`tenseal.sealapi`) saves and loads objects only through file
paths, so each conversion goes through a private scratch file, in memory (/dev/shm) where the
system has it. Loading never trusts its input: the byte count is bounded before SEAL parses
anything, SEAL's own checks run on load, and every failure becomes one `SealFormatError`.
"""

import atexit
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TypeVar

import tenseal.sealapi as seal


class SealFormatError(ValueError):
    """Bytes that are not a valid SEAL object for the expected parameters."""


_scratch_lock = threading.Lock()
_scratch_dir: Path | None = None

SealObject = TypeVar("SealObject", seal.Ciphertext, seal.GaloisKeys)


def _scratch() -> Path:
    """A private directory for conversion files, removed when the process exits."""
    global _scratch_dir
    with _scratch_lock:
        if _scratch_dir is None:
            shm = Path("/dev/shm")
            parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
            _scratch_dir = Path(tempfile.mkdtemp(prefix="emofl-seal-", dir=parent))
            atexit.register(shutil.rmtree, _scratch_dir, True)
        return _scratch_dir


def _scratch_file() -> Path:
    return _scratch() / uuid.uuid4().hex


def to_bytes(obj) -> bytes:
    """SEAL's own serialisation (compressed) of a ciphertext, key set, parameter set or a
    `Serializable` (seeded: half the size of the full object)."""
    path = _scratch_file()
    try:
        obj.save(str(path))
        return path.read_bytes()
    finally:
        path.unlink(missing_ok=True)


def _check_size(data: bytes, max_bytes: int, what: str) -> None:
    if not data:
        raise SealFormatError(f"{what} is empty")
    if len(data) > max_bytes:
        raise SealFormatError(f"{what} is {len(data)} bytes, more than the {max_bytes} allowed")


def load(kind: type[SealObject], context: seal.SEALContext, data: bytes, max_bytes: int,
         what: str) -> SealObject:
    """A `kind` object (Ciphertext or GaloisKeys) parsed from `data` and checked by SEAL to
    be valid for `context`."""
    _check_size(data, max_bytes, what)
    path = _scratch_file()
    try:
        path.write_bytes(data)
        obj = kind()
        obj.load(context, str(path))
    except Exception as err:  # SEAL raises several C++ exception types for bad bytes
        raise SealFormatError(f"{what} is not a valid SEAL object: {err}") from None
    finally:
        path.unlink(missing_ok=True)
    if not seal.is_valid_for(obj, context):
        raise SealFormatError(f"{what} does not fit the session's encryption parameters")
    return obj


def load_parameters(data: bytes, max_bytes: int = 4096) -> seal.EncryptionParameters:
    """Encryption parameters parsed from `data` (keys are never part of them)."""
    _check_size(data, max_bytes, "encryption parameters")
    path = _scratch_file()
    try:
        path.write_bytes(data)
        params = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
        params.load(str(path))
    except Exception as err:
        raise SealFormatError(f"encryption parameters are not valid: {err}") from None
    finally:
        path.unlink(missing_ok=True)
    return params
