"""A device's Ed25519 signature of its encrypted update, and the server's check of it.

The signed message is `UPDATE_SIGNING_CONTEXT` followed by canonical JSON (sorted keys, no
spaces) of: the run (Flower's run id), the global round, the client id, the context
fingerprint, the vector length, num_examples and the SHA-256 (hex) of every chunk in order. The
prefix differs from the ledger entry's and no signed note (a tree head) starts with it, so the
one device key that signs ledger and updates never has a signature valid for both. What the
signature does and does not protect: `encrypted_update`.
"""

import hashlib
import json
from dataclasses import asdict, replace

from emofl.common.crypto.encrypted_update import EncryptedUpdate, UpdateOrigin, UpdateSignature
from emofl.common.privacy.checkpoint_note import NoteError, parse_verifier_key, verifier_key
from emofl.common.privacy.signing import Signer, signature_is_valid

UPDATE_SIGNING_CONTEXT = b"emofl ckks update signature v1\n"


def signed_message(update: EncryptedUpdate, origin: UpdateOrigin) -> bytes:
    """The bytes a device signs for `update` sent as `origin`."""
    body = {**asdict(origin), "context": update.fingerprint, "length": update.length,
            "num_examples": update.num_examples,
            "chunks": [hashlib.sha256(chunk).hexdigest() for chunk in update.chunks]}
    return UPDATE_SIGNING_CONTEXT + json.dumps(body, sort_keys=True,
                                               separators=(",", ":")).encode()


def sign_update(update: EncryptedUpdate, origin: UpdateOrigin, signer: Signer) -> EncryptedUpdate:
    """The update with `signer`'s signature for `origin` attached."""
    signature = signer.sign(signed_message(update, origin))
    return replace(update, signature=UpdateSignature(
        origin=origin, signer=verifier_key(signer.name, signer.public_key), signature=signature))


def signature_problem(update: EncryptedUpdate, expected: UpdateOrigin, device_key: str) -> str:
    """Why `update` is not the device's own, signed for `expected` ("" when it is).

    `device_key` is the C2SP verifier key the server holds for `expected.client_id` (enrolled,
    or pinned in simulation; "" when it has none). The origin the update claims is compared
    first, so that a replay or a relabelled update is named as such; the signature is then
    verified under `device_key` over `expected`, never over what the update claims.
    """
    signed = update.signature
    if signed is None:
        return "unsigned update"
    claimed = signed.origin
    if claimed.run != expected.run:
        return f"replayed: signed for run {claimed.run}, not this run ({expected.run})"
    if claimed.global_round != expected.global_round:
        return (f"replayed: signed for round {claimed.global_round}, not round "
                f"{expected.global_round}")
    if claimed.client_id != expected.client_id:
        return (f"signed as client {claimed.client_id}, sent as client {expected.client_id} "
                "(another client's update)")
    if not device_key:
        return f"client {expected.client_id} has no enrolled signing key"
    if signed.signer != device_key:
        return f"signed with a key that is not client {expected.client_id}'s"
    try:
        _, public_key = parse_verifier_key(device_key)
    except NoteError:
        return f"client {expected.client_id}'s recorded key is not an Ed25519 verifier key"
    if not (isinstance(signed.signature, bytes)
            and signature_is_valid(public_key, signed_message(update, expected),
                                   signed.signature)):
        return "bad signature: forged, or modified since it was signed"
    return ""
