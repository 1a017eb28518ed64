"""Signed tree heads in the C2SP formats: a tlog-checkpoint body inside an Ed25519 signed note.

A checkpoint (c2sp.org/tlog-checkpoint) is three lines, the log's origin, its size and the
base64 Merkle root, then optional extension lines; a device adds one, its claimed
`epsilon E delta D` for that size. The signed note (c2sp.org/signed-note) appends a blank line
and `— <name> <base64(key id || signature)>`, where the key id is the first four bytes of
SHA-256(name || "\\n" || 0x01 || public key). Anyone holding the verifier key
`<name>+<key id hex>+<base64(0x01 || public key)>` can check a head without emofl.
"""

import base64
import binascii
import hashlib
import math
from dataclasses import dataclass

from emofl.common.errors import UserError
from emofl.common.privacy.merkle import HASH_SIZE
from emofl.common.privacy.signing import PUBLIC_KEY_SIZE, Signer, signature_is_valid

ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space


class NoteError(UserError):
    """A tree head that is malformed or whose signature does not verify."""


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """The signer's verifier key string: name+keyid+base64(0x01 || key)."""
    encoded = base64.b64encode(bytes([ED25519]) + public_key).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes]:
    """(name, raw public key) of a verifier key; NoteError unless it is a valid Ed25519 one."""
    name, _, rest = vkey.partition("+")
    hash_hex, _, encoded = rest.partition("+")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raw = b""
    if (not name or len(raw) != 1 + PUBLIC_KEY_SIZE or raw[0] != ED25519
            or key_id(name, raw[1:]).hex() != hash_hex):
        raise NoteError(f"not an Ed25519 verifier key: {vkey!r}")
    return name, raw[1:]


@dataclass(frozen=True)
class Checkpoint:
    """One tree head: the log's origin, its size, its root, and the ε it claims at that size."""

    origin: str
    size: int
    root: bytes
    epsilon: float
    delta: float

    def text(self) -> str:
        root = base64.b64encode(self.root).decode()
        return (f"{self.origin}\n{self.size}\n{root}\n"
                f"epsilon {self.epsilon!r} delta {self.delta!r}\n")

    @classmethod
    def parse(cls, text: str) -> "Checkpoint":
        lines = text.split("\n")
        if len(lines) != 5 or lines[-1] != "" or not lines[1].isdigit():
            raise NoteError("a tree head is origin, size, root and one claim line")
        claim = lines[3].split(" ")
        try:
            root = base64.b64decode(lines[2], validate=True)
            epsilon, delta = float(claim[1]), float(claim[3])
        except (binascii.Error, IndexError, ValueError):
            raise NoteError(f"unreadable tree head root or claim: {lines[2:4]!r}") from None
        if (len(root) != HASH_SIZE or len(claim) != 4 or claim[0::2] != ["epsilon", "delta"]
                or math.isnan(epsilon)):
            raise NoteError(f"malformed tree head root or claim: {lines[2:4]!r}")
        return cls(lines[0], int(lines[1]), root, epsilon, delta)


def sign_note(text: str, signer: Signer) -> str:
    """`text` (ending in a newline) as a signed note by `signer`."""
    if not text.endswith("\n"):
        raise ValueError("a note's text ends in a newline")
    signature = signer.sign(text.encode())
    blob = base64.b64encode(key_id(signer.name, signer.public_key) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{signer.name} {blob}\n"


def open_note(note: str, vkey: str) -> str:
    """The text of `note` once a signature by `vkey` verifies; NoteError otherwise."""
    name, public_key = parse_verifier_key(vkey)
    text, separator, signatures = note.rpartition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise NoteError("not a signed note (no blank line before its signatures)")
    text += "\n"
    wanted = key_id(name, public_key)
    for line in signatures[:-1].split("\n"):
        signer, _, blob = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            continue
        if (line.startswith(SIGNATURE_PREFIX) and signer == name and raw[:4] == wanted
                and signature_is_valid(public_key, text.encode(), raw[4:])):
            return text
    raise NoteError(f"the tree head carries no valid signature by {name}")
