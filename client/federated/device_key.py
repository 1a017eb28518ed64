"""A simulated device's Ed25519 signing key: one key file per client in the run's client folder.

An enrolled device signs with the key made when it was set up; a simulated device has none, so
its key is generated the first time it trains and kept (PKCS#8 PEM, mode 0600) next to its
ledger. Either way the ledger code only sees a `Signer`.
"""

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from emofl.common.errors import UserError
from emofl.common.privacy.signed_ledger import ledger_origin
from emofl.common.privacy.signing import Ed25519Signer
from emofl.common.storage import atomic_io


def key_path(state_dir: str | Path, client_id: int) -> Path:
    return Path(state_dir) / f"client_{client_id}.key"


def simulated_device_signer(state_dir: str | Path, client_id: int) -> Ed25519Signer:
    """Client `client_id`'s signer, its key file created (0600) on first use."""
    path = key_path(state_dir, client_id)
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                         NoEncryption())
        atomic_io.write_bytes(path, pem, private=True)
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except ValueError:
        raise UserError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return Ed25519Signer(ledger_origin(client_id), key)
