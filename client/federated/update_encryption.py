"""A device's side of CKKS secure aggregation: encrypt and sign its weighted update, decrypt
the sum. The signature is the device's own (its Ed25519 device key, the one that signs its
privacy ledger), bound to the run, the round and its client id."""

import numpy as np
import torch
from flwr.app import ArrayRecord

from emofl.client.federated.keys import ClientKeys
from emofl.common.crypto.ckks import decrypt_vector, encrypt_vector, flatten_state, unflatten_state
from emofl.common.crypto.encrypted_update import EncryptedUpdate, UpdateOrigin
from emofl.common.crypto.update_signature import sign_update
from emofl.common.privacy.signing import Signer
from emofl.common.protocol.ckks_records import from_arrays, is_encrypted, to_arrays


def encrypt_update(state: dict[str, torch.Tensor], num_examples: int, keys: ClientKeys, *,
                   signer: Signer, origin: UpdateOrigin) -> ArrayRecord:
    """CKKS ciphertexts of n_i·w_i (flattened, chunked to the slots), signed by `signer` for
    `origin` (this run, round and client)."""
    vector, _ = flatten_state(state)
    chunks = encrypt_vector(keys.secret_context, vector * num_examples)
    update = EncryptedUpdate(chunks=chunks, length=len(vector), num_examples=num_examples,
                             fingerprint=keys.fingerprint)
    return to_arrays(sign_update(update, origin, signer))


def global_state(record: ArrayRecord, template: dict[str, torch.Tensor],
                 keys: ClientKeys | None) -> dict[str, torch.Tensor]:
    """The global weights a server message carries: plaintext, or Σ n_i·w_i / Σ n_i decrypted.

    `template` (a state_dict of the model being filled) gives the layout to unflatten into.
    """
    if not is_encrypted(record):
        return record.to_torch_state_dict()
    if keys is None:
        raise ValueError("the server sent an encrypted model but this run has no CKKS keys")
    aggregate = from_arrays(record)
    vector = decrypt_vector(keys.secret_context, aggregate.chunks, aggregate.length)
    _, layout = flatten_state(template)
    return unflatten_state(np.asarray(vector) / aggregate.num_examples, layout)
