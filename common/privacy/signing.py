"""Who signs a device's ledger: a small interface, and its Ed25519 implementation.

A ledger entry and a tree head are signed by the device's own Ed25519 key. The ledger code sees
only a `Signer` (a name, the raw public key, and `sign`), so a simulated device's key file and
an enrolled device's key are interchangeable; verifying needs nothing but the public key.
"""

from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PUBLIC_KEY_SIZE = 32


class Signer(Protocol):
    """A device's signing key: `name` (the signer's name in its notes), `public_key` (raw
    Ed25519, 32 bytes) and `sign(message)` (a 64-byte Ed25519 signature)."""

    name: str
    public_key: bytes

    def sign(self, message: bytes) -> bytes: ...


class Ed25519Signer:
    """A `Signer` holding an Ed25519 private key in memory."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not name or any(c.isspace() or c == "+" for c in name):
            raise ValueError(f"a signer name has no spaces or '+', got {name!r}")
        self.name = name
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def signature_is_valid(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is the Ed25519 signature of `message` under the raw `public_key`."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True
