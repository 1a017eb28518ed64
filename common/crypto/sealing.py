"""Sealing a secret to one device's X25519 key, so that whoever relays it cannot open it.

The enrollment bundle carries the CKKS secret context this way: the operator's machine seals it
to the device's sealing key, the server folder only ever holds the sealed bytes (or nothing),
and only the device's private key opens it. The construction is ECIES-style:

- a fresh ephemeral X25519 key pair per message, Diffie-Hellman with the recipient's key;
- HKDF-SHA256 over the shared secret (salt: the ephemeral and recipient public keys) gives a
  256-bit AES-GCM key;
- AES-256-GCM with a random 96-bit nonce encrypts the secret; the caller's associated data
  (for a bundle: the server id, the node id and the recipient key) is authenticated, so a sealed
  secret moved into another bundle, or a flipped bit anywhere, fails to open.

Envelope: `MAGIC || ephemeral public key (32) || nonce (12) || ciphertext with tag`.
"""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from emofl.common.errors import UserError

MAGIC = b"emofl-sealed-v1:"
_INFO = b"emofl sealed secret, X25519-HKDF-SHA256-AES256GCM"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16


class SealError(UserError):
    """A sealed secret that does not open: not sealed to this key, tampered with, or bound to
    other associated data."""


def raw_public(key: X25519PublicKey) -> bytes:
    """The 32 raw bytes of an X25519 public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _aead_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=ephemeral + recipient,
                info=_INFO).derive(shared)


def seal(secret: bytes, recipient: X25519PublicKey, associated_data: bytes) -> bytes:
    """`secret` encrypted so that only the holder of `recipient`'s private key can open it, and
    only together with the same `associated_data`."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = raw_public(ephemeral.public_key())
    key = _aead_key(ephemeral.exchange(recipient), ephemeral_public, raw_public(recipient))
    nonce = os.urandom(_NONCE_BYTES)
    return MAGIC + ephemeral_public + nonce + AESGCM(key).encrypt(nonce, secret, associated_data)


def open_sealed(sealed: bytes, recipient: X25519PrivateKey, associated_data: bytes) -> bytes:
    """The secret `seal` encrypted; SealError when `sealed` is not an envelope, was sealed to
    another key or other associated data, or was changed in any byte."""
    header = len(MAGIC) + _KEY_BYTES + _NONCE_BYTES
    if not sealed.startswith(MAGIC) or len(sealed) < header + _TAG_BYTES:
        raise SealError("the sealed secret is not an emofl sealed envelope")
    ephemeral_public = sealed[len(MAGIC):len(MAGIC) + _KEY_BYTES]
    nonce = sealed[len(MAGIC) + _KEY_BYTES:header]
    own_public = raw_public(recipient.public_key())
    shared = recipient.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    key = _aead_key(shared, ephemeral_public, own_public)
    try:
        return AESGCM(key).decrypt(nonce, sealed[header:], associated_data)
    except InvalidTag:
        raise SealError("the sealed secret does not open with this device's key: it was sealed "
                        "for another device or bundle, or it was changed") from None
