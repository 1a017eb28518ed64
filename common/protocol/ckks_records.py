"""Encrypted vectors as Flower ArrayRecords, so they travel where model weights travel.

An `EncryptedUpdate` becomes an ArrayRecord of uint8 arrays: one per ciphertext chunk plus its
length/num_examples and fingerprint, and, on a device's update, its signature: the origin it
claims (run, round, client as uint64), the signer's verifier key and the signature bytes.
FedAvg's round loop then carries the encrypted aggregate to clients and into checkpoints
exactly as it carries plaintext weights.
"""

import numpy as np
from flwr.app import Array, ArrayRecord

from emofl.common.crypto.ckks import CkksError
from emofl.common.crypto.encrypted_update import EncryptedUpdate, UpdateOrigin, UpdateSignature

META_KEY = "ckks-meta"
FINGERPRINT_KEY = "ckks-fingerprint"
ORIGIN_KEY = "ckks-signed-for"
SIGNER_KEY = "ckks-signer"
SIGNATURE_KEY = "ckks-signature"
CHUNK_PREFIX = "ckks-chunk-"


def _bytes_array(data: bytes) -> Array:
    return Array(np.frombuffer(data, dtype=np.uint8).copy())


def to_arrays(update: EncryptedUpdate) -> ArrayRecord:
    record = ArrayRecord()
    record[META_KEY] = Array(np.array([update.length, update.num_examples], dtype=np.int64))
    record[FINGERPRINT_KEY] = _bytes_array(update.fingerprint.encode())
    if update.signature is not None:
        origin = update.signature.origin
        record[ORIGIN_KEY] = Array(np.array([origin.run, origin.global_round, origin.client_id],
                                            dtype=np.uint64))
        record[SIGNER_KEY] = _bytes_array(update.signature.signer.encode())
        record[SIGNATURE_KEY] = _bytes_array(update.signature.signature)
    for index, chunk in enumerate(update.chunks):
        record[f"{CHUNK_PREFIX}{index:05d}"] = _bytes_array(chunk)
    return record


def is_encrypted(record: ArrayRecord) -> bool:
    return META_KEY in record


def from_arrays(record: ArrayRecord) -> EncryptedUpdate:
    """The update an ArrayRecord carries; CkksError when it is not a well-formed one."""
    try:
        length, num_examples = (int(v) for v in record[META_KEY].numpy())
        chunk_keys = sorted(k for k in record if k.startswith(CHUNK_PREFIX))
        return EncryptedUpdate(
            chunks=[record[k].numpy().tobytes() for k in chunk_keys],
            length=length,
            num_examples=num_examples,
            fingerprint=record[FINGERPRINT_KEY].numpy().tobytes().decode("ascii"),
            signature=_signature(record),
        )
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as err:
        raise CkksError(f"malformed encrypted update record: {type(err).__name__}") from None


def _signature(record: ArrayRecord) -> UpdateSignature | None:
    """The signature a record carries; None when it has none (the aggregate, or unsigned)."""
    if ORIGIN_KEY not in record and SIGNER_KEY not in record and SIGNATURE_KEY not in record:
        return None
    run, global_round, client_id = (int(v) for v in record[ORIGIN_KEY].numpy())
    return UpdateSignature(origin=UpdateOrigin(run, global_round, client_id),
                           signer=record[SIGNER_KEY].numpy().tobytes().decode("ascii"),
                           signature=record[SIGNATURE_KEY].numpy().tobytes())


def record_bytes(record: ArrayRecord) -> int:
    """Bytes of payload an ArrayRecord carries (weights or ciphertexts)."""
    return sum(array.numpy().nbytes for array in record.values())
