"""Encrypted model updates: one client's signed CKKS ciphertexts of n_i·w_i, and their sum.

Integrity. CKKS ciphertexts carry no integrity protection. TenSEAL 0.3.18 refuses truncated
bytes, random bytes, extra trailing bytes and ciphertexts made under other parameters ("failed to
parse", "ciphertext data is invalid"), and loads a ciphertext of another scale (caught here by
the scale check). It loads without complaint: empty bytes (a vector of size 0), a ciphertext
encrypted under another context with the same parameters, and most single-bit flips (about 3 in
4 positions; the rest hit a header or push a coefficient past its modulus); those decrypt to
garbage as large as the message bound. So each update carries an `UpdateSignature`: the
device's Ed25519 signature over the run, the global round, its client id, the context
fingerprint, length, num_examples and the SHA-256 of every chunk in order
(`update_signature.py`), made with the device's own key (the key that signs its privacy
ledger), which the server verifies against the key it enrolled or pinned for that client.
The signature does:
- catch any change to a signed update on its way to the server or at rest (flipped bytes,
  substituted or reordered chunks, an edited num_examples or length);
- stop anyone without a device's private key from adding an update to the sum in its name,
  the server included: the server holds public keys only, so it cannot forge an update. This
  matters because the public context can encrypt: whoever has seen it can make well-formed
  ciphertexts of any values, and only the signature says which device made them;
- refuse a replay: an update signed for another run or round, or as another client, fails.
It does not:
- protect against a malicious device: it can sign a poisoned update, values that overflow the
  message bound, or a ciphertext made under another context (garbage in the sum);
- protect devices from the server, which holds the public key: it can still drop updates and
  return any ciphertext as "the sum" (it can encrypt, so it can add its own values); devices
  cannot verify the sum;
- hide anything from other devices: every device holds the secret context and can decrypt every
  individual update it sees, so per-update confidentiality holds against the server and
  outsiders only (DP noise, added before encryption, covers the rest).
The ciphertext checks here (`check_updates`, `sum_encrypted`) read no signature: the server's
strategy (`server/federated/ckks_fedavg.py`) verifies signatures first and sums only what
passed both. Never send a raw CKKS decryption back to the server: exact decryptions of
ciphertexts it holds reveal the encryption noise, from which the secret key can be recovered
(Li & Micciancio 2021).
"""

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import tenseal as ts

from emofl.common.crypto.ckks import CkksError, one_line, slots_of

_OVERSIZE_FACTOR = 2


@dataclass(frozen=True)
class UpdateOrigin:
    """What an update is for: Flower's run id, the global round, the sending client's id."""

    run: int
    global_round: int
    client_id: int


@dataclass(frozen=True)
class UpdateSignature:
    """A device's signature of an update: the origin it claims, the verifier key it signed with
    (C2SP text; the server checks against its own record of the device's key, never this one
    alone) and the 64-byte Ed25519 signature."""

    origin: UpdateOrigin
    signer: str
    signature: bytes


@dataclass
class EncryptedUpdate:
    """One client's encrypted n_i·w_i: ciphertext chunks, the plain vector length, n_i, the
    fingerprint of the public context it was encrypted under, and its device's signature (None
    on the aggregate the server sends back)."""

    chunks: list[bytes]
    length: int
    num_examples: int
    fingerprint: str
    signature: UpdateSignature | None = None


def check_updates(
    public_context: ts.Context,
    updates: list[EncryptedUpdate],
    expected_fingerprint: str,
    expected_length: int,
) -> list[str]:
    """Per update, "" when its ciphertexts may join the sum, else the reason they may not.

    Each update is checked on its own, in order of cost: fingerprint, length, num_examples, chunk
    count and chunk byte sizes (more than 2x a fresh ciphertext is refused before anything reads
    it), then every chunk must load under the public context as a fresh ciphertext of the
    expected size and scale; an update whose chunks repeat an earlier one's is a duplicate. No
    update makes this raise. Signatures are not checked here (see the module docstring).
    """
    return [reason for reason, _ in _screen(public_context, updates, expected_fingerprint,
                                            expected_length)]


def sum_encrypted(
    public_context: ts.Context,
    updates: list[EncryptedUpdate],
    expected_fingerprint: str,
    expected_length: int,
) -> tuple[list[bytes], int, list[tuple[int, str]]]:
    """Add the updates `check_updates` accepts, chunk by chunk; say why the others were not.

    A rejected update never touches the sum. Returns (serialized summed chunks, Σ num_examples
    of the accepted updates, [(index, reason)] of the rejected ones); raises CkksError when none
    is acceptable.
    """
    screened = _screen(public_context, updates, expected_fingerprint, expected_length)
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
            length: int) -> list[tuple[str, list[ts.CKKSVector] | None]]:
    """(reason, None) for each rejected update, ("", its loaded chunks) for each accepted one."""
    if public_context.is_private():
        raise CkksError("the aggregator must hold a public context, not a secret one")
    if length <= 0:
        raise CkksError(f"expected_length must be positive, got {length}")
    reference = _Reference(public_context)
    screened: list[tuple[str, list[ts.CKKSVector] | None]] = []
    seen: dict[bytes, int] = {}
    for index, update in enumerate(updates):
        try:
            _check_envelope(update, fingerprint, length, reference)
            digest = _chunks_digest(update.chunks)
            if digest in seen:
                raise _Rejected(f"duplicate of update {seen[digest]}")
            vectors = [_load_chunk(public_context, chunk, j, length, reference)
                       for j, chunk in enumerate(update.chunks)]
        except _Rejected as reason:
            screened.append((str(reason), None))
            continue
        except Exception as error:  # anything TenSEAL throws stays this update's problem
            screened.append((f"unusable: {one_line(error)}", None))
            continue
        seen[digest] = index
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


def _chunks_digest(chunks: list[bytes]) -> bytes:
    """SHA-256 over the chunks, each length-prefixed: equal only for the same ciphertexts."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(len(chunk).to_bytes(8, "big"))
        digest.update(chunk)
    return digest.digest()


def _count(chunks: object) -> str:
    return str(len(chunks)) if isinstance(chunks, list) else type(chunks).__name__
