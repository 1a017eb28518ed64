"""Where a run's CKKS keys live on disk, and `emofl keys init`.

A key directory holds two files:
- `secret_context.bin`: the CKKS context with its secret key, for clients only (mode 0600);
- `public_context.bin`: the same context without the secret key, for the server.
Clients and the server each read their part through `client/federated/keys.py` and
`server/federated/keys.py`. Nothing here authenticates an update: each device signs its own
with its Ed25519 device key (`update_signature.py`), so no key is shared with the server.
"""

from pathlib import Path

from emofl.common.crypto.ckks import (
    DEFAULT_PARAMS,
    CkksParams,
    context_fingerprint,
    create_secret_context,
    public_context_bytes,
)
from emofl.common.errors import UserError
from emofl.common.storage import atomic_io

SECRET_CONTEXT = "secret_context.bin"
PUBLIC_CONTEXT = "public_context.bin"


class KeyFileError(UserError):
    """A key directory is missing a file, or would be overwritten."""


def init_keys(out_dir: str | Path, params: CkksParams = DEFAULT_PARAMS) -> dict:
    """Create a fresh key directory; refuses to overwrite existing keys. A write that fails (a
    full disk) removes the key files written so far, so that a rerun is not refused."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise KeyFileError(f"{out} is a file; --out names the key folder to create")
    existing = [name for name in (SECRET_CONTEXT, PUBLIC_CONTEXT)
                if (out / name).exists()]
    if existing:
        raise KeyFileError(f"{out} already holds keys ({', '.join(existing)}); "
                           "choose another --out")
    atomic_io.make_dir(out)  # a file in the way is reported before the keys are made
    secret = create_secret_context(params)
    public = public_context_bytes(secret)
    files = {SECRET_CONTEXT: (secret, True), PUBLIC_CONTEXT: (public, False)}
    try:
        for name, (data, private) in files.items():
            atomic_io.write_bytes(out / name, data, private=private)
    except BaseException:
        for name in files:
            (out / name).unlink(missing_ok=True)
        raise
    return {
        "out": str(out),
        "params": {"poly_modulus_degree": params.poly_modulus_degree,
                   "coeff_mod_bit_sizes": list(params.coeff_mod_bit_sizes),
                   "global_scale_bits": params.global_scale_bits, "security": "128-bit"},
        "public_fingerprint": context_fingerprint(public),
        "files": {"clients": [SECRET_CONTEXT], "server": [PUBLIC_CONTEXT]},
    }


def read_key_file(key_dir: str | Path, name: str) -> bytes:
    path = Path(key_dir) / name
    if not path.is_file():
        raise KeyFileError(f"key file not found: {path} (create keys with `emofl keys init`)")
    return path.read_bytes()
