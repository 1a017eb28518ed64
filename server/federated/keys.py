"""The CKKS key the server holds: the public context. Never more.

`load_server_keys` reads only the public context file and refuses a context that carries a
secret key, so no code path of the server can decrypt an update or the aggregate. The server
verifies updates with the devices' public signing keys (`tree_heads.TreeHeadBook.device_key`)
and holds no private key of any device, so it cannot sign an update in a device's name.
"""

from dataclasses import dataclass
from pathlib import Path

import tenseal as ts

from emofl.common.crypto.ckks import context_fingerprint, load_context
from emofl.common.crypto.key_files import PUBLIC_CONTEXT, read_key_file


@dataclass(frozen=True)
class ServerKeys:
    """The public CKKS context and its fingerprint."""

    public_context: ts.Context
    fingerprint: str


def load_server_keys(key_dir: str | Path) -> ServerKeys:
    """The server's keys from `key_dir`; raises CkksError if the context is a secret one."""
    public = read_key_file(key_dir, PUBLIC_CONTEXT)
    return ServerKeys(
        public_context=load_context(public, require_secret=False),
        fingerprint=context_fingerprint(public),
    )
