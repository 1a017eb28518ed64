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
import torch

_TAG_DOMAIN = b"emofl-ckks-update-v1"
_MIN_KEY_BYTES = 16
_OVERSIZE_FACTOR = 2


class CkksError(ValueError):
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
        raise CkksError(f"not a TenSEAL context: {_one_line(error)}") from None
    if _parms(context).scheme() != ts.SCHEME_TYPE.CKKS.value:
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
    slots = _slots(context)
    return [ts.ckks_vector(context, values[start:start + slots]).serialize()
            for start in range(0, len(values), slots)]


def decrypt_vector(secret_context: ts.Context, chunks: list[bytes], length: int) -> np.ndarray:
    """Decrypt chunks made by `encrypt_vector` (or summed) back to a float64 vector of `length`."""
    if not secret_context.is_private():
        raise CkksError("decryption needs a secret context")
    if len(chunks) != math.ceil(length / _slots(secret_context)):
        raise CkksError(f"{len(chunks)} chunks cannot hold {length} values")
    parts = []
    for index, chunk in enumerate(chunks):
        try:
            parts.append(np.asarray(ts.ckks_vector_from(secret_context, chunk).decrypt()))
        except Exception as error:  # TenSEAL raises ValueError or RuntimeError
            raise CkksError(f"chunk {index} does not decrypt: {_one_line(error)}") from None
    vector = np.concatenate([np.zeros(0), *parts])
    if len(vector) != length:
        raise CkksError(f"chunks hold {len(vector)} values, expected {length}")
    return vector


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


def sum_encrypted(
    public_context: ts.Context,
    updates: list[EncryptedUpdate],
    expected_fingerprint: str,
    expected_length: int,
    integrity_key: bytes,
) -> tuple[list[bytes], int, list[tuple[int, str]]]:
    """Add the acceptable updates chunk by chunk; say why each other one was rejected.

    Each update is checked on its own, in order of cost: fingerprint, length, num_examples, chunk
    count and chunk byte sizes (more than 2x a fresh ciphertext is refused before anything reads
    it), then the tag, then every chunk must load under the public context as a fresh ciphertext
    of the expected size and scale. A rejected update never touches the sum, and no single update
    makes this raise. Returns (serialized summed chunks, Σ num_examples of the accepted updates,
    [(index, reason)] of the rejected ones); raises CkksError when none is acceptable.
    """
    if public_context.is_private():
        raise CkksError("the aggregator must hold a public context, not a secret one")
    if expected_length <= 0:
        raise CkksError(f"expected_length must be positive, got {expected_length}")
    _check_key(integrity_key)
    reference = _Reference(public_context)
    total, rejected, seen_tags = None, [], {}
    num_examples = 0
    for index, update in enumerate(updates):
        try:
            _check_envelope(update, expected_fingerprint, expected_length, reference)
            if not hmac.compare_digest(update.tag, _update_tag(integrity_key, update)):
                raise _Rejected("bad tag: not signed with the integrity key, or modified since")
            if update.tag in seen_tags:
                raise _Rejected(f"duplicate of update {seen_tags[update.tag]}")
            vectors = [_load_chunk(public_context, chunk, j, expected_length, reference)
                       for j, chunk in enumerate(update.chunks)]
            # a new list: if an addition fails, the running sum is left as it was
            total = vectors if total is None else [
                a + b for a, b in zip(total, vectors, strict=True)]
        except _Rejected as reason:
            rejected.append((index, str(reason)))
            continue
        except Exception as error:  # anything TenSEAL throws stays this update's problem
            rejected.append((index, f"unusable: {_one_line(error)}"))
            continue
        seen_tags[update.tag] = index
        num_examples += update.num_examples
    if total is None:
        first = f": {rejected[0][1]}" if rejected else ""
        raise CkksError(f"no acceptable update among {len(updates)}{first}")
    return [vector.serialize() for vector in total], num_examples, rejected


class _Rejected(Exception):
    """Why one update cannot join the sum."""


class _Reference:
    """What a fresh ciphertext under the public context looks like: slots, scale, parameters,
    and its serialized size (made by encrypting zeros with the public key)."""

    def __init__(self, context: ts.Context) -> None:
        self.slots = _slots(context)
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
        raise _Rejected(f"chunk {j} does not load: {_one_line(error)}") from None
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


def _parms(context: ts.Context):
    return context.data.seal_context().first_context_data().parms()


def _slots(context: ts.Context) -> int:
    return _parms(context).poly_modulus_degree() // 2


def _count(chunks: object) -> str:
    return str(len(chunks)) if isinstance(chunks, list) else type(chunks).__name__


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
