"""The CKKS key a device holds: the secret context, with the fingerprint of its public half.

In simulation it is read from the run's key directory; an enrolled device receives it sealed in
its bundle. Either way the rest of the client only sees a `ClientKeys`. The key that signs the
device's updates is its own Ed25519 device key, not a CKKS key (`update_encryption.py`).
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import tenseal as ts

from emofl.common.crypto.ckks import context_fingerprint, load_context, public_context_bytes
from emofl.common.crypto.key_files import SECRET_CONTEXT, read_key_file


@dataclass(frozen=True)
class ClientKeys:
    """A device's secret CKKS context and the fingerprint of its public half."""

    secret_context: ts.Context
    fingerprint: str


@lru_cache(maxsize=4)
def load_client_keys(key_dir: str | Path) -> ClientKeys:
    """The client keys in `key_dir` (loaded once per process)."""
    secret = read_key_file(key_dir, SECRET_CONTEXT)
    return ClientKeys(
        secret_context=load_context(secret, require_secret=True),
        fingerprint=context_fingerprint(public_context_bytes(secret)),
    )
