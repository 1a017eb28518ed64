"""The keys a device holds in CKKS mode: the secret context and the integrity key.

In simulation they are read from the run's key directory; an enrolled device will receive
them at enrollment. Either way the rest of the client only sees a `ClientKeys`.
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import tenseal as ts

from emofl.common.crypto.ckks import context_fingerprint, load_context, public_context_bytes
from emofl.common.crypto.key_files import INTEGRITY_KEY, SECRET_CONTEXT, read_key_file


@dataclass(frozen=True)
class ClientKeys:
    """A device's secret CKKS context, the fingerprint of its public half, the integrity key."""

    secret_context: ts.Context
    fingerprint: str
    integrity_key: bytes


@lru_cache(maxsize=4)
def load_client_keys(key_dir: str | Path) -> ClientKeys:
    """The client keys in `key_dir` (loaded once per process)."""
    secret = read_key_file(key_dir, SECRET_CONTEXT)
    return ClientKeys(
        secret_context=load_context(secret, require_secret=True),
        fingerprint=context_fingerprint(public_context_bytes(secret)),
        integrity_key=read_key_file(key_dir, INTEGRITY_KEY),
    )
