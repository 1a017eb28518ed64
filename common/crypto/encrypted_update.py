"""Encrypted model updates: one client's signed CKKS ciphertexts of n_i·w_i, and their sum.

Integrity. CKKS ciphertexts carry no integrity protection. TenSEAL 0.3.18 refuses truncated
bytes, random bytes, extra trailing bytes and ciphertexts made under other parameters ("failed to
parse", "ciphertext data is invalid"), and loads a ciphertext of another scale (caught here by
the scale check). It loads without complaint: empty bytes (a vector of size 0), a ciphertext
encrypted under another context with the same parameters, and most single-bit flips (about 3 in
4 positions; the rest hit a header or push a coefficient past its modulus); those decrypt to
garbage as large as the message bound. So each update carries an HMAC-SHA256 `tag` over its
fingerprint, length, num_examples and every chunk, keyed with an integrity key that clients and
the server share (it is not the CKKS secret: it cannot decrypt).
The tag does:
- catch any change to a signed update on its way to the server or at rest (flipped bytes,
  substituted or reordered chunks, an edited num_examples or length);
- stop anyone without the integrity key from adding an update to the sum. This matters because
  the public context can encrypt: whoever has seen it can make well-formed ciphertexts of any
  values, and only the tag says they came from a key holder.
It does not:
- protect against a malicious key holder: a client can sign a poisoned update, values that
  overflow the message bound, or a ciphertext made under another context (garbage in the sum);
- protect clients from the server, which holds the integrity key and the public key: it can
  drop, forge or replay updates and return any ciphertext as "the sum"; clients cannot verify it;
- stop replay of a signed update from an earlier round (the tag binds no round); an update
  repeated within one `sum_encrypted` call is rejected as a duplicate;
- hide anything from other key holders: every client can decrypt every individual update it
  sees, so per-update confidentiality holds against the server and outsiders only (DP noise,
  added before encryption, covers the rest).
Never send a raw CKKS decryption back to the server: exact decryptions of ciphertexts it holds
reveal the encryption noise, from which the secret key can be recovered (Li & Micciancio 2021).
"""

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass, replace

import numpy as np
import tenseal as ts

from emofl.common.crypto.ckks import CkksError, one_line, slots_of

_TAG_DOMAIN = b"emofl-ckks-update-v1"
_MIN_KEY_BYTES = 16
_OVERSIZE_FACTOR = 2


@dataclass
class EncryptedUpdate:
    """One client's encrypted n_i·w_i: ciphertext chunks, the plain vector length, n_i, the
    fingerprint of the public context it was encrypted under, and its HMAC tag."""

    chunks: list[bytes]
    length: int
    num_examples: int
    fingerprint: str
    tag: bytes = b""


def create_integrity_key() -> bytes:
    """A fresh 32-byte key for update tags, shared by clients and the server."""
    return secrets.token_bytes(32)


def sign_update(key: bytes, update: EncryptedUpdate) -> EncryptedUpdate:
    """The update with its tag filled in."""
    return replace(update, tag=_update_tag(key, update))


def check_updates(
    public_context: ts.Context,
    updates: list[EncryptedUpdate],
    expected_fingerprint: str,
    expected_length: int,
    integrity_key: bytes,
) -> list[str]:
    """Per update, "" when it may join the sum, else the reason it may not.

    Each update is checked on its own, in order of cost: fingerprint, length, num_examples, chunk
    count and chunk byte sizes (more than 2x a fresh ciphertext is refused before anything reads
    it), then the tag, then every chunk must load under the public context as a fresh ciphertext
    of the expected size and scale; a repeated update is a duplicate. No update makes this raise.
    """
    return [reason for reason, _ in _screen(public_context, updates, expected_fingerprint,
                                            expected_length, integrity_key)]


def sum_encrypted(
    public_context: ts.Context,
    updates: list[EncryptedUpdate],
    expected_fingerprint: str,
    expected_length: int,
    integrity_key: bytes,
) -> tuple[list[bytes], int, list[tuple[int, str]]]:
    """Add the updates `check_updates` accepts, chunk by chunk; say why the others were not.

    A rejected update never touches the sum. Returns (serialized summed chunks, Σ num_examples
    of the accepted updates, [(index, reason)] of the rejected ones); raises CkksError when none
    is acceptable.
    """
    screened = _screen(public_context, updates, expected_fingerprint, expected_length,
                       integrity_key)
    rejected = [(i, reason) for i, (reason, _) in enumerate(screened) if reason]
    accepted = [(updates[i], vectors) for i, (reason, vectors) in enumerate(screened)
                if not reason]
    if not accepted:
        first = f": {rejected[0][1]}" if rejected else ""
        raise CkksError(f"no acceptable update among {len(updates)}{first}")
    total = accepted[0][1]
    for _, vectors in accepted[1:]:
        total = [a + b for a, b in zip(total, vectors, strict=True)]
    num_examples = sum(update.num_examples for update, _ in accepted)
    return [vector.serialize() for vector in total], num_examples, rejected


def _screen(public_context: ts.Context, updates: list[EncryptedUpdate], fingerprint: str,
            length: int, integrity_key: bytes) -> list[tuple[str, list[ts.CKKSVector] | None]]:
    """(reason, None) for each rejected update, ("", its loaded chunks) for each accepted one."""
    if public_context.is_private():
        raise CkksError("the aggregator must hold a public context, not a secret one")
    if length <= 0:
        raise CkksError(f"expected_length must be positive, got {length}")
    _check_key(integrity_key)
    reference = _Reference(public_context)
    screened: list[tuple[str, list[ts.CKKSVector] | None]] = []
    seen_tags: dict[bytes, int] = {}
    for index, update in enumerate(updates):
        try:
            _check_envelope(update, fingerprint, length, reference)
            if not hmac.compare_digest(update.tag, _update_tag(integrity_key, update)):
                raise _Rejected("bad tag: not signed with the integrity key, or modified since")
            if update.tag in seen_tags:
                raise _Rejected(f"duplicate of update {seen_tags[update.tag]}")
            vectors = [_load_chunk(public_context, chunk, j, length, reference)
                       for j, chunk in enumerate(update.chunks)]
        except _Rejected as reason:
            screened.append((str(reason), None))
            continue
        except Exception as error:  # anything TenSEAL throws stays this update's problem
            screened.append((f"unusable: {one_line(error)}", None))
            continue
        seen_tags[update.tag] = index
        screened.append(("", vectors))
    return screened


class _Rejected(Exception):
    """Why one update cannot join the sum."""


class _Reference:
    """What a fresh ciphertext under the public context looks like: slots, scale, parameters,
    and its serialized size (made by encrypting zeros with the public key)."""

    def __init__(self, context: ts.Context) -> None:
        self.slots = slots_of(context)
        self.scale = context.global_scale
        fresh = ts.ckks_vector(context, np.zeros(self.slots))
        self.parms_id = fresh.data.ciphertext()[0].parms_id()
        self.max_bytes = _OVERSIZE_FACTOR * len(fresh.serialize())


def _check_envelope(update: EncryptedUpdate, fingerprint: str, length: int,
                    reference: _Reference) -> None:
    """The checks that read no ciphertext: fields, chunk count, chunk byte sizes."""
    if update.fingerprint != fingerprint:
        raise _Rejected("made under another context (fingerprint differs)")
    if update.length != length:
        raise _Rejected(f"length {update.length!r}, expected {length}")
    if not isinstance(update.num_examples, int) or update.num_examples <= 0:
        raise _Rejected(f"num_examples {update.num_examples!r} is not a positive integer")
    if not isinstance(update.tag, bytes):
        raise _Rejected("tag is not bytes")
    expected_chunks = math.ceil(length / reference.slots)
    if not isinstance(update.chunks, list) or len(update.chunks) != expected_chunks:
        raise _Rejected(f"{_count(update.chunks)} chunks, expected {expected_chunks}")
    for j, chunk in enumerate(update.chunks):
        if not isinstance(chunk, bytes):
            raise _Rejected(f"chunk {j} is not bytes")
        if len(chunk) > reference.max_bytes:
            raise _Rejected(f"chunk {j} is oversized: {len(chunk)} bytes, "
                            f"limit {reference.max_bytes}")


def _load_chunk(context: ts.Context, chunk: bytes, j: int, length: int,
                reference: _Reference) -> ts.CKKSVector:
    """Deserialize chunk j and check it is a fresh ciphertext of the right size and scale."""
    try:
        vector = ts.ckks_vector_from(context, chunk)
    except Exception as error:  # ValueError or RuntimeError, depending on where parsing fails
        raise _Rejected(f"chunk {j} does not load: {one_line(error)}") from None
    expected_size = min(reference.slots, length - j * reference.slots)
    if vector.size() != expected_size:
        raise _Rejected(f"chunk {j} holds {vector.size()} values, expected {expected_size}")
    ciphertexts = vector.data.ciphertext()
    if len(ciphertexts) != 1:
        raise _Rejected(f"chunk {j} holds {len(ciphertexts)} ciphertexts, expected 1")
    ciphertext = ciphertexts[0]
    if not math.isclose(ciphertext.scale, reference.scale, rel_tol=1e-9):
        raise _Rejected(f"chunk {j} has scale 2^{math.log2(ciphertext.scale):.2f}, "
                        f"expected 2^{math.log2(reference.scale):.2f}")
    if (ciphertext.size() != 2 or ciphertext.parms_id() != reference.parms_id
            or ciphertext.is_transparent()):
        raise _Rejected(f"chunk {j} is not a fresh ciphertext of this context's parameters")
    return vector


def _update_tag(key: bytes, update: EncryptedUpdate) -> bytes:
    """HMAC-SHA256 over the update's fields and chunks, each length-prefixed (unambiguous)."""
    _check_key(key)
    mac = hmac.new(key, _TAG_DOMAIN, hashlib.sha256)
    fields = [update.fingerprint.encode(), str(update.length).encode(),
              str(update.num_examples).encode(), str(len(update.chunks)).encode()]
    for data in [*fields, *update.chunks]:
        mac.update(len(data).to_bytes(8, "big"))
        mac.update(data)
    return mac.digest()


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) < _MIN_KEY_BYTES:
        raise CkksError(f"the integrity key must be at least {_MIN_KEY_BYTES} bytes")


def _count(chunks: object) -> str:
    return str(len(chunks)) if isinstance(chunks, list) else type(chunks).__name__
