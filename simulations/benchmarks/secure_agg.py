"""Cost of CKKS secure aggregation for one model: bytes, client and server time, exactness.

Usage:
  python -m emofl.simulations.benchmarks.secure_agg micro [--model FILE] [--clients 10]
  python -m emofl.simulations.benchmarks.secure_agg compare PLAIN_RUN CKKS_RUN

`micro` encrypts the model's n_i·w_i for each client, sums the updates as the server does and
decrypts as a client does, with the default CKKS parameters; medians over the repeats. It
also checks the decrypted average against plaintext FedAvg. `compare` reads two finished
`emofl simulate` runs of the same federation (`--secure-agg none` and `ckks`) and sets their
round times, bytes sent and accuracy side by side.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from emofl.client.federated.keys import load_client_keys
from emofl.client.federated.update_encryption import encrypt_update, global_state
from emofl.common.crypto.ckks import flatten_state
from emofl.common.crypto.encrypted_update import EncryptedUpdate, UpdateOrigin, sum_encrypted
from emofl.common.crypto.key_files import init_keys
from emofl.common.model.frame_store import load_model
from emofl.common.privacy.signed_ledger import ledger_origin
from emofl.common.privacy.signing import Ed25519Signer
from emofl.common.protocol.ckks_records import from_arrays, record_bytes, to_arrays
from emofl.server.federated.keys import load_server_keys


def _timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def micro(model_file: str | None, clients: int, repeats: int, key_dir: Path) -> dict:
    state = load_model(model_file)[0].state_dict()
    vector, _ = flatten_state(state)
    if not (key_dir / "public_context.bin").exists():
        init_keys(key_dir)
    client, server = load_client_keys(key_dir), load_server_keys(key_dir)
    sizes = [1000 + 400 * i for i in range(clients)]
    signers = [Ed25519Signer(ledger_origin(i), Ed25519PrivateKey.generate())
               for i in range(clients)]
    encrypt_s, sum_s, decrypt_s, errors = [], [], [], []
    for _ in range(repeats):
        timed = [_timed(lambda i=i, n=n: encrypt_update(
            state, n, client, signer=signers[i], origin=UpdateOrigin(0, 1, i)))
            for i, n in enumerate(sizes)]
        encrypt_s += [seconds for _, seconds in timed]
        updates = [from_arrays(record) for record, _ in timed]
        (chunks, total, rejected), seconds = _timed(lambda updates=updates: sum_encrypted(
            server.public_context, updates, server.fingerprint, len(vector)))
        assert not rejected and total == sum(sizes)
        sum_s.append(seconds)
        aggregate = to_arrays(EncryptedUpdate(chunks=chunks, length=len(vector),
                                              num_examples=total, fingerprint=server.fingerprint))
        decrypted, seconds = _timed(lambda aggregate=aggregate: global_state(aggregate, state,
                                                                             client))
        decrypt_s.append(seconds)
        # every client sent the same w, so plaintext FedAvg is w itself
        errors.append(float(np.max(np.abs(flatten_state(decrypted)[0] - vector))))
    ciphertext_bytes = record_bytes(timed[0][0])
    return {
        "model_values": len(vector), "clients": clients, "repeats": repeats,
        "bytes_per_update_float32": 4 * len(vector),
        "bytes_per_update_ckks": ciphertext_bytes,
        "expansion": ciphertext_bytes / (4 * len(vector)),
        "ciphertexts_per_update": len(updates[0].chunks),
        "client_encrypt_seconds_median": statistics.median(encrypt_s),
        "server_sum_seconds_median": statistics.median(sum_s),
        "client_decrypt_seconds_median": statistics.median(decrypt_s),
        "max_abs_error_vs_plaintext_fedavg": max(errors),
    }


def _run_summary(run: Path) -> dict:
    rounds = json.loads((run / "metrics.json").read_text())["rounds"]
    card = json.loads((run / "model_card.json").read_text())
    return {
        "run": str(run),
        "rounds": len(rounds),
        "median_round_wall_seconds": statistics.median(r["wall_seconds"] for r in rounds),
        "median_bytes_up_per_client": statistics.median(
            c["bytes_up"] for r in rounds for c in r["clients"]),
        "final_val_accuracy": card["validation"]["accuracy"],
    }


def compare(plain_run: Path, ckks_run: Path) -> dict:
    plain, secure = _run_summary(plain_run), _run_summary(ckks_run)
    return {
        "none": plain, "ckks": secure,
        "round_time_ratio": secure["median_round_wall_seconds"]
        / plain["median_round_wall_seconds"],
        "bytes_ratio": secure["median_bytes_up_per_client"] / plain["median_bytes_up_per_client"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    m = commands.add_parser("micro")
    m.add_argument("--model", default=None, help="model file (default: the shipped model)")
    m.add_argument("--clients", type=int, default=10)
    m.add_argument("--repeats", type=int, default=3)
    m.add_argument("--keys", type=Path, default=Path("runs/bench_keys"))
    c = commands.add_parser("compare")
    c.add_argument("plain_run", type=Path)
    c.add_argument("ckks_run", type=Path)
    args = parser.parse_args()
    if args.command == "micro":
        result = micro(args.model, args.clients, args.repeats, args.keys)
    else:
        result = compare(args.plain_run, args.ckks_run)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
