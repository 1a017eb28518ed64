"""A device's own keys, made once on the device and never sent anywhere but as public keys.

`DEV/keys/` holds three key pairs, each private file mode 0600:
- `node_key` / `node_key.pub`: ECDSA P-384 in OpenSSH format, the identity Flower's SuperLink
  authenticates (`flower-supernode --auth-supernode-private-key`);
- `sealing.key`: X25519 (PKCS#8 PEM), which opens the secrets sealed to this device;
- `signing.key`: Ed25519 (PKCS#8 PEM), which signs what the device sends (updates, ledger
  entries and tree heads); `load_signing_key` is the one way to get it.
"""

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from emofl.common.errors import UserError
from emofl.common.protocol.enrollment import b64
from emofl.common.storage import atomic_io

KEY_DIR = "keys"
NODE_KEY = "node_key"
NODE_PUBLIC_KEY = "node_key.pub"
SEALING_KEY = "sealing.key"
SIGNING_KEY = "signing.key"
DEVICE_KEY_FILES = (NODE_KEY, NODE_PUBLIC_KEY, SEALING_KEY, SIGNING_KEY)


class DeviceKeyError(UserError):
    """A device folder without its keys, or with a key file that is not the right key."""


def key_path(device_dir: str | Path, name: str) -> Path:
    return Path(device_dir) / KEY_DIR / name


def create_device_keys(device_dir: str | Path) -> None:
    """Make the device's three key pairs in `DEV/keys/`; the caller has checked that none
    exists. A failed write removes what was written, so that a rerun is not refused."""
    node = ec.generate_private_key(ec.SECP384R1())
    files = {
        NODE_KEY: (node.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()), True),
        NODE_PUBLIC_KEY: (node.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
                          + b"\n", False),
        SEALING_KEY: (_pem(X25519PrivateKey.generate()), True),
        SIGNING_KEY: (_pem(Ed25519PrivateKey.generate()), True),
    }
    try:
        for name, (data, private) in files.items():
            atomic_io.write_bytes(key_path(device_dir, name), data, private=private)
    except BaseException:
        for name in files:
            key_path(device_dir, name).unlink(missing_ok=True)
        raise


def _pem(key: X25519PrivateKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _read_private(device_dir: str | Path, name: str, kind: type):
    path = key_path(device_dir, name)
    if not path.is_file():
        raise DeviceKeyError(f"{device_dir} has no device keys ({path} is missing); create them "
                             "with `emofl device init --dir DEV`")
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except ValueError:
        key = None
    if not isinstance(key, kind):
        raise DeviceKeyError(f"{path} is not a {kind.__name__.removesuffix('PrivateKey')} "
                             "private key")
    return key


def load_signing_key(device_dir: str | Path) -> Ed25519PrivateKey:
    """The device's Ed25519 signing key."""
    return _read_private(device_dir, SIGNING_KEY, Ed25519PrivateKey)


def load_sealing_key(device_dir: str | Path) -> X25519PrivateKey:
    """The device's X25519 key that opens secrets sealed to it."""
    return _read_private(device_dir, SEALING_KEY, X25519PrivateKey)


def node_public_key_text(device_dir: str | Path) -> str:
    """The device's Flower node key, OpenSSH public format, one line."""
    path = key_path(device_dir, NODE_PUBLIC_KEY)
    if not path.is_file() or not key_path(device_dir, NODE_KEY).is_file():
        raise DeviceKeyError(f"{device_dir} has no device keys ({path} is missing); create them "
                             "with `emofl device init --dir DEV`")
    return path.read_text(encoding="ascii").strip()


def public_keys(device_dir: str | Path) -> dict[str, str]:
    """The three public keys as an enrollment request carries them."""
    raw = (Encoding.Raw, PublicFormat.Raw)
    return {
        "node_public_key": node_public_key_text(device_dir),
        "sealing_public_key": b64(load_sealing_key(device_dir).public_key().public_bytes(*raw)),
        "signing_public_key": b64(load_signing_key(device_dir).public_key().public_bytes(*raw)),
    }
