"""CKKS secure aggregation: clients encrypt n_i·w_i, the server adds ciphertexts it cannot read.

Every client holds the same secret CKKS context; the server holds only the public one (no secret
key: `load_context(..., require_secret=False)` refuses anything else). A client flattens its model
state to one float vector, encrypts n_i·w_i in chunks of `slots` values, and signs the update; the
server checks each update on its own, adds the acceptable ones homomorphically and returns the
encrypted sum with Σ n_i; clients decrypt and divide. Only additions happen on ciphertext, so the
contexts carry no relinearization or Galois keys.

Numbers: the decrypted sum must stay well below `CkksParams.message_bound` (beyond it values wrap
around to garbage, and nothing at decryption can tell). The error CKKS adds is absolute, ~1e-4
on a sum of 50 updates at the default parameters, so ≤ 1e-7 once divided by Σ n_i ≥ 1000.

What protects an update's integrity, and what does not: `encrypted_update`.
"""

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import tenseal as ts
import torch

from emofl.common.errors import UserError


class CkksError(UserError):
    """A context, ciphertext or update that cannot be used; the message is one line."""


@dataclass(frozen=True)
class CkksParams:
    """CKKS parameters: ring degree N, coefficient modulus primes (bits; the last one is the
    special prime used only by keys), and the scale 2**global_scale_bits values are encoded at."""

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    global_scale_bits: int

    @property
    def slots(self) -> int:
        """Values one ciphertext holds: N/2."""
        return self.poly_modulus_degree // 2

    @property
    def message_bound(self) -> float:
        """|value| a (summed) ciphertext can hold before it wraps around: 2^(data bits - s - 1)."""
        data_bits = sum(self.coeff_mod_bit_sizes[:-1])
        return 2.0 ** (data_bits - self.global_scale_bits - 1)


# Measured by emofl.simulations.benchmarks.ckks_params. N=4096 is the smallest ring that fits:
# at 128-bit security it allows 109 bits, (54, 54) uses 108. One data prime makes a ciphertext
# 7.5x float32 (TenSEAL compresses, so 54 bits cost less than 60, which gives 8.02x). The scale
# splits the prime's bits between precision and range: 2^28 leaves a message bound of 2^25
# (13x the worst 50-client sum, 50 x 5e4) and a sum error ~1e-4 (10x under the needed 1e-3).
DEFAULT_PARAMS = CkksParams(poly_modulus_degree=4096, coeff_mod_bit_sizes=(54, 54),
                            global_scale_bits=28)


def create_secret_context(params: CkksParams = DEFAULT_PARAMS) -> bytes:
    """A new serialized CKKS context with its secret and public keys (no relin/Galois keys)."""
    context = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                         coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes))
    context.global_scale = 2.0**params.global_scale_bits
    return context.serialize(save_secret_key=True, save_public_key=True,
                             save_relin_keys=False, save_galois_keys=False)


def public_context_bytes(secret_context: bytes) -> bytes:
    """The same context with the secret key dropped, serialized; the same bytes on every client."""
    context = load_context(secret_context, require_secret=True)
    context.make_context_public()
    return context.serialize(save_relin_keys=False, save_galois_keys=False)


def load_context(data: bytes, *, require_secret: bool | None = None) -> ts.Context:
    """Deserialize a CKKS context, refusing it if it is (True) or is not (False) public.

    The server calls this with require_secret=False: that is where "the server never holds a
    CKKS secret key" is enforced. Contexts without a public key are refused too (TenSEAL cannot
    encrypt under them and crashes making them public).
    """
    try:
        context = ts.context_from(data)
    except Exception as error:  # TenSEAL raises ValueError, RuntimeError or TypeError
        raise CkksError(f"not a TenSEAL context: {one_line(error)}") from None
    if parms_of(context).scheme() != ts.SCHEME_TYPE.CKKS.value:
        raise CkksError("not a CKKS context")
    if not context.has_public_key():
        raise CkksError("the context carries no public key")
    try:
        context.global_scale  # noqa: B018 - raises when the context has no scale
    except ValueError:
        raise CkksError("the context has no global scale") from None
    if require_secret is True and not context.is_private():
        raise CkksError("expected a secret context, got a public one")
    if require_secret is False and context.is_private():
        raise CkksError("expected a public context, got one holding a secret key")
    return context


def context_fingerprint(public_bytes: bytes) -> str:
    """sha256 hex of a public context's serialization: names the context updates are made under."""
    return hashlib.sha256(public_bytes).hexdigest()


def flatten_state(
    state: dict[str, torch.Tensor],
) -> tuple[np.ndarray, list[tuple[str, tuple[int, ...]]]]:
    """A state_dict as one float64 vector (keys in state order) and its layout (names, shapes)."""
    layout = [(name, tuple(tensor.shape)) for name, tensor in state.items()]
    parts = [t.detach().cpu().reshape(-1).to(torch.float64).numpy() for t in state.values()]
    return np.concatenate([np.zeros(0), *parts]), layout


def unflatten_state(
    vector: np.ndarray, layout: list[tuple[str, tuple[int, ...]]]
) -> dict[str, torch.Tensor]:
    """Inverse of `flatten_state`, as float32 tensors (the dtype models train and ship in)."""
    sizes = [math.prod(shape) for _, shape in layout]
    if len(vector) != sum(sizes):
        raise CkksError(f"vector has {len(vector)} values, the layout needs {sum(sizes)}")
    state, start = {}, 0
    for (name, shape), size in zip(layout, sizes, strict=True):
        values = np.asarray(vector[start:start + size], dtype=np.float32).reshape(shape)
        state[name] = torch.from_numpy(values.copy())
        start += size
    return state


def encrypt_vector(context: ts.Context, vector: np.ndarray) -> list[bytes]:
    """Encrypt a 1-D vector as serialized ciphertexts of `slots` values each (the last shorter)."""
    values = np.asarray(vector, dtype=np.float64)
    if values.ndim != 1:
        raise CkksError(f"expected a 1-D vector, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise CkksError("the vector holds NaN or infinite values")
    slots = slots_of(context)
    return [ts.ckks_vector(context, values[start:start + slots]).serialize()
            for start in range(0, len(values), slots)]


def decrypt_vector(secret_context: ts.Context, chunks: list[bytes], length: int) -> np.ndarray:
    """Decrypt chunks made by `encrypt_vector` (or summed) back to a float64 vector of `length`."""
    if not secret_context.is_private():
        raise CkksError("decryption needs a secret context")
    if len(chunks) != math.ceil(length / slots_of(secret_context)):
        raise CkksError(f"{len(chunks)} chunks cannot hold {length} values")
    parts = []
    for index, chunk in enumerate(chunks):
        try:
            parts.append(np.asarray(ts.ckks_vector_from(secret_context, chunk).decrypt()))
        except Exception as error:  # TenSEAL raises ValueError or RuntimeError
            raise CkksError(f"chunk {index} does not decrypt: {one_line(error)}") from None
    vector = np.concatenate([np.zeros(0), *parts])
    if len(vector) != length:
        raise CkksError(f"chunks hold {len(vector)} values, expected {length}")
    return vector


def parms_of(context: ts.Context):
    """The SEAL encryption parameters of a TenSEAL context."""
    return context.data.seal_context().first_context_data().parms()


def slots_of(context: ts.Context) -> int:
    """Values one ciphertext of this context holds: N/2."""
    return parms_of(context).poly_modulus_degree() // 2


def one_line(error: BaseException) -> str:
    """A TenSEAL error as one line: its type and its whitespace-collapsed message."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
