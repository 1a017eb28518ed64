"""A device's side of CKKS secure aggregation: encrypt and sign its share of the next global
state, decrypt the sum. The signature is the device's own (its Ed25519 device key, the one that
signs its privacy ledger), bound to the run, the round and its client id. With a server
optimizer the share has the FedAvgM step folded in (`emofl.common.crypto.server_step`)."""

from dataclasses import dataclass

import numpy as np
import torch
from flwr.app import ArrayRecord

from emofl.client.federated.keys import ClientKeys
from emofl.common.crypto.ckks import decrypt_vector, encrypt_vector, flatten_state, unflatten_state
from emofl.common.crypto.encrypted_update import EncryptedUpdate, UpdateOrigin
from emofl.common.crypto.server_step import ServerOptimizer, split_state
from emofl.common.crypto.update_signature import sign_update
from emofl.common.privacy.signing import Signer
from emofl.common.protocol.ckks_records import from_arrays, is_encrypted, to_arrays


@dataclass(frozen=True)
class ReceivedState:
    """What a device decrypted: the global weights, and FedAvgM's momentum (flattened) when the
    run has one and a round has made it."""

    weights: dict[str, torch.Tensor]
    momentum: np.ndarray | None


def encrypt_update(state: dict[str, torch.Tensor], num_examples: int, keys: ClientKeys, *,
                   signer: Signer, origin: UpdateOrigin,
                   step: tuple[ServerOptimizer, ReceivedState] | None = None) -> ArrayRecord:
    """CKKS ciphertexts of n_i·w_i (flattened, chunked to the slots), signed by `signer` for
    `origin` (this run, round and client). With `step` (the run's server optimizer and the
    state this round started from), n_i times the device's FedAvgM share in place of w_i."""
    vector, _ = flatten_state(state)
    if step is not None and step[0].active:
        optimizer, received = step
        vector = optimizer.share(flatten_state(received.weights)[0], received.momentum, vector)
    chunks = encrypt_vector(keys.secret_context, vector * num_examples)
    update = EncryptedUpdate(chunks=chunks, length=len(vector), num_examples=num_examples,
                             fingerprint=keys.fingerprint)
    return to_arrays(sign_update(update, origin, signer))


def received_state(record: ArrayRecord, template: dict[str, torch.Tensor],
                   keys: ClientKeys | None) -> ReceivedState:
    """The global state a server message carries: plaintext weights, or Σ n_i·s_i / Σ n_i
    decrypted (s_i: each device's share). `template` (a state_dict of the model being filled)
    gives the layout to unflatten into."""
    if not is_encrypted(record):
        return ReceivedState(record.to_torch_state_dict(), None)
    if keys is None:
        raise ValueError("the server sent an encrypted model but this run has no CKKS keys")
    aggregate = from_arrays(record)
    vector = decrypt_vector(keys.secret_context, aggregate.chunks, aggregate.length)
    flat_template, layout = flatten_state(template)
    weights, momentum = split_state(np.asarray(vector) / aggregate.num_examples,
                                    len(flat_template))
    return ReceivedState(unflatten_state(weights, layout), momentum)


def global_state(record: ArrayRecord, template: dict[str, torch.Tensor],
                 keys: ClientKeys | None) -> dict[str, torch.Tensor]:
    """The global weights a server message carries (see `received_state`)."""
    return received_state(record, template, keys).weights
