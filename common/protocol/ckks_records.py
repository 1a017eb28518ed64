"""Encrypted vectors as Flower ArrayRecords, so they travel where model weights travel.

An `EncryptedUpdate` becomes an ArrayRecord of uint8 arrays: one per ciphertext chunk plus its
length/num_examples, fingerprint and tag. FedAvg's round loop then carries the encrypted
aggregate to clients and into checkpoints exactly as it carries plaintext weights.
"""

import numpy as np
from flwr.app import Array, ArrayRecord

from emofl.common.crypto.ckks import CkksError
from emofl.common.crypto.encrypted_update import EncryptedUpdate

META_KEY = "ckks-meta"
FINGERPRINT_KEY = "ckks-fingerprint"
TAG_KEY = "ckks-tag"
CHUNK_PREFIX = "ckks-chunk-"


def _bytes_array(data: bytes) -> Array:
    return Array(np.frombuffer(data, dtype=np.uint8).copy())


def to_arrays(update: EncryptedUpdate) -> ArrayRecord:
    record = ArrayRecord()
    record[META_KEY] = Array(np.array([update.length, update.num_examples], dtype=np.int64))
    record[FINGERPRINT_KEY] = _bytes_array(update.fingerprint.encode())
    record[TAG_KEY] = _bytes_array(update.tag)
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
            tag=record[TAG_KEY].numpy().tobytes(),
        )
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as err:
        raise CkksError(f"malformed encrypted update record: {type(err).__name__}") from None


def record_bytes(record: ArrayRecord) -> int:
    """Bytes of payload an ArrayRecord carries (weights or ciphertexts)."""
    return sum(array.numpy().nbytes for array in record.values())
