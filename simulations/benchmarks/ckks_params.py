"""CKKS parameter sets for secure aggregation: size, speed and the error of a 50-client sum.

Usage: python -m emofl.simulations.benchmarks.ckks_params [--clients 50] [--repeats 15] [--out F]
For each candidate: bytes per ciphertext and expansion against float32 (bytes per slot / 4),
median encrypt / decrypt / add ms per ciphertext, context sizes, and two error figures from
one ciphertext's worth of slots per client, encrypted, summed and decrypted with
`emofl.common.crypto.ckks` (signatures and checks included):
- `random`: updates n_i·w_i with n_i in [1000, 5000] and w_i uniform in [-10, 10];
- `worst`: every client sends 5e4 (n_i = 5000, w = 10) in every slot, a sum of 2.5e6.
`sum_error` is the max abs error of the encrypted sum; divided by Σn ≥ 1000 it must stay
≤ 1e-6, so `ok` needs both sum errors ≤ 1e-3 and an expansion ≤ 8. Sets that TenSEAL refuses at
128-bit security are listed with the reason. Last, the chosen default on a 105k-value update.
"""

import argparse
import json
import statistics
import time

import numpy as np
import tenseal as ts
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from emofl.common.crypto.ckks import (
    DEFAULT_PARAMS,
    CkksParams,
    context_fingerprint,
    create_secret_context,
    decrypt_vector,
    encrypt_vector,
    load_context,
    public_context_bytes,
)
from emofl.common.crypto.encrypted_update import (
    EncryptedUpdate,
    UpdateOrigin,
    sum_encrypted,
)
from emofl.common.crypto.update_signature import sign_update
from emofl.common.privacy.signing import Ed25519Signer
from emofl.common.storage.atomic_io import write_json

CANDIDATES = [
    CkksParams(8192, (60, 40, 40, 60), 40),  # TenSEAL tutorials' default
    CkksParams(8192, (60, 60), 40),
    CkksParams(4096, (60, 49), 40),
    CkksParams(4096, (60, 49), 36),
    CkksParams(4096, (60, 49), 33),
    CkksParams(4096, (54, 54), 30),
    CkksParams(4096, (54, 54), 28),  # DEFAULT_PARAMS
    CkksParams(4096, (50, 50), 26),
    CkksParams(4096, (40, 20), 20),
    CkksParams(4096, (60, 60), 40),  # over the 109 bits N=4096 allows
    CkksParams(2048, (40, 14), 18),
]
MODEL_VALUES = 105_000
MAX_SUM_ERROR = 1e-3
WORST_UPDATE = 5e4  # n_i = 5000 examples times a weight of 10


class _Setup:
    """One parameter set's contexts, keys and a signed-update factory."""

    def __init__(self, params: CkksParams) -> None:
        secret_bytes = create_secret_context(params)
        self.public_bytes = public_context_bytes(secret_bytes)
        self.secret_bytes = secret_bytes
        self.secret = load_context(secret_bytes, require_secret=True)
        self.public = load_context(self.public_bytes, require_secret=False)
        self.fingerprint = context_fingerprint(self.public_bytes)
        self.signer = Ed25519Signer("benchmark", Ed25519PrivateKey.generate())

    def update(self, vector: np.ndarray, num_examples: int) -> EncryptedUpdate:
        chunks = encrypt_vector(self.secret, vector)
        return sign_update(EncryptedUpdate(chunks, len(vector), num_examples, self.fingerprint),
                           UpdateOrigin(0, 1, 0), self.signer)

    def sum_error(self, vectors: np.ndarray, counts: np.ndarray) -> float:
        updates = [self.update(v, int(n)) for v, n in zip(vectors, counts, strict=True)]
        length = vectors.shape[1]
        chunks, total, rejected = sum_encrypted(self.public, updates, self.fingerprint, length)
        assert not rejected and total == counts.sum(), rejected
        return float(np.abs(decrypt_vector(self.secret, chunks, length) - vectors.sum(0)).max())


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times)


def measure(params: CkksParams, clients: int, repeats: int, rng: np.random.Generator) -> dict:
    """One candidate's row of the table."""
    row = {"poly_modulus_degree": params.poly_modulus_degree,
           "coeff_mod_bit_sizes": list(params.coeff_mod_bit_sizes),
           "global_scale_bits": params.global_scale_bits, "slots": params.slots,
           "message_bound": params.message_bound,
           "bound_over_worst_sum": params.message_bound / (clients * WORST_UPDATE)}
    try:
        setup = _Setup(params)
    except ValueError as error:
        return {**row, "refused": str(error)}
    slots = params.slots
    values = rng.uniform(-1, 1, slots)
    fresh = ts.ckks_vector(setup.secret, values)
    loaded = ts.ckks_vector_from(setup.public, fresh.serialize())
    ct_bytes = len(fresh.serialize())
    counts = rng.integers(1000, 5001, clients)
    random_updates = counts[:, None] * rng.uniform(-10, 10, (clients, slots))
    random_error = setup.sum_error(random_updates, counts)
    worst_error = setup.sum_error(np.full((clients, slots), WORST_UPDATE), np.full(clients, 5000))
    expansion = ct_bytes / slots / 4
    return {
        **row,
        "ciphertext_bytes": ct_bytes, "expansion_vs_float32": round(expansion, 3),
        "secret_context_bytes": len(setup.secret_bytes),
        "public_context_bytes": len(setup.public_bytes),
        "encrypt_ms": _median_ms(lambda: ts.ckks_vector(setup.secret, values), repeats),
        "decrypt_ms": _median_ms(fresh.decrypt, repeats),
        "add_ms": _median_ms(lambda: loaded + loaded, repeats),
        "random_sum_error": random_error,
        "random_average_error": random_error / counts.sum(),
        "worst_sum_error": worst_error,
        "worst_average_error_at_sum_n_1000": worst_error / 1000,
        "ok": expansion <= 8 and max(random_error, worst_error) <= MAX_SUM_ERROR,
    }


def model_update_cost(params: CkksParams, clients: int, rng: np.random.Generator) -> dict:
    """Seconds and bytes for a model-sized update: encrypt one, sum `clients`, decrypt."""
    setup = _Setup(params)
    vector = rng.uniform(-5e4, 5e4, MODEL_VALUES)
    started = time.perf_counter()
    update = setup.update(vector, 5000)
    encrypt_s = time.perf_counter() - started
    # fresh encryptions of one vector: repeated ciphertexts would be refused as duplicates
    updates = [update, *(setup.update(vector, 5000) for _ in range(clients - 1))]
    started = time.perf_counter()
    chunks, _, _ = sum_encrypted(setup.public, updates, setup.fingerprint, MODEL_VALUES)
    sum_s = time.perf_counter() - started
    started = time.perf_counter()
    decrypt_vector(setup.secret, chunks, MODEL_VALUES)
    return {"values": MODEL_VALUES, "clients": clients, "ciphertexts": len(update.chunks),
            "update_bytes": sum(map(len, update.chunks)), "encrypt_seconds": encrypt_s,
            "server_sum_seconds": sum_s, "server_seconds_per_update": sum_s / clients,
            "decrypt_seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    result = {
        "candidates": [measure(p, args.clients, args.repeats, rng) for p in CANDIDATES],
        "default": {"params": [DEFAULT_PARAMS.poly_modulus_degree,
                               list(DEFAULT_PARAMS.coeff_mod_bit_sizes),
                               DEFAULT_PARAMS.global_scale_bits],
                    **model_update_cost(DEFAULT_PARAMS, 10, rng)},
        "tenseal": ts.__version__,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
