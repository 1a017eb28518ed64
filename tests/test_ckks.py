"""CKKS aggregation: the encrypted weighted sum is right, and bad updates are kept out of it."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import tenseal as ts
import torch

from emofl.common.crypto.ckks import (
    DEFAULT_PARAMS,
    CkksError,
    CkksParams,
    context_fingerprint,
    create_secret_context,
    decrypt_vector,
    encrypt_vector,
    flatten_state,
    load_context,
    public_context_bytes,
    unflatten_state,
)
from emofl.common.crypto.encrypted_update import EncryptedUpdate, sum_encrypted
from emofl.common.model.emotion_net import EmotionNet

SLOTS = DEFAULT_PARAMS.slots
LENGTH = SLOTS * 5 // 2  # three chunks, the last one half full


@pytest.fixture(scope="module")
def env():
    secret_bytes = create_secret_context()
    public_bytes = public_context_bytes(secret_bytes)
    return SimpleNamespace(
        secret=load_context(secret_bytes, require_secret=True),
        public=load_context(public_bytes, require_secret=False),
        fingerprint=context_fingerprint(public_bytes),
        rng=np.random.default_rng(7),
    )


def _weights(rng, length=LENGTH):
    """Model-like weights: mostly small, a few as large as 10."""
    weights = rng.normal(0, 0.3, length)
    weights[rng.choice(length, 20, replace=False)] = rng.uniform(-10, 10, 20)
    return weights


def _update(env, weights, num_examples, context=None):
    chunks = encrypt_vector(context or env.secret, num_examples * weights)
    return EncryptedUpdate(chunks, len(weights), num_examples, env.fingerprint)


def _average(env, updates):
    chunks, total, rejected = sum_encrypted(env.public, updates, env.fingerprint, LENGTH)
    return decrypt_vector(env.secret, chunks, LENGTH) / total, total, rejected


def test_encrypted_weighted_sum_matches_the_plain_weighted_average(env):
    weights = [_weights(env.rng) for _ in range(4)]
    counts = [1200, 3100, 4999, 2500]
    average, total, rejected = _average(
        env, [_update(env, w, n) for w, n in zip(weights, counts, strict=True)])
    expected = sum(n * w for w, n in zip(weights, counts, strict=True)) / sum(counts)
    assert rejected == [] and total == sum(counts)
    assert average.shape == (LENGTH,) and np.abs(average - expected).max() <= 1e-6


def test_default_params_hold_fifty_worst_case_updates():
    params = DEFAULT_PARAMS
    assert params.poly_modulus_degree == 4096 and sum(params.coeff_mod_bit_sizes) <= 109
    assert params.message_bound >= 2 * 50 * 5e4
    context = load_context(create_secret_context(params), require_secret=True)
    total = ts.ckks_vector(context, np.full(SLOTS, 5e4))
    for _ in range(49):
        total = total + ts.ckks_vector(context, np.full(SLOTS, 5e4))
    assert np.abs(np.array(total.decrypt()) - 2.5e6).max() <= 1e-3


def test_flatten_and_unflatten_round_trip_a_model_state():
    model = EmotionNet(width=8)
    state = model.state_dict()
    vector, layout = flatten_state(state)
    assert vector.dtype == np.float64 and vector.shape == (sum(t.numel() for t in state.values()),)
    assert [name for name, _ in layout] == list(state)
    restored = unflatten_state(vector, layout)
    assert all(torch.equal(restored[name], state[name]) for name in state)
    EmotionNet(width=8).load_state_dict(restored)
    with pytest.raises(CkksError):
        unflatten_state(vector[:-1], layout)


def test_the_public_context_holds_no_secret_and_the_server_refuses_one(env):
    secret_bytes = create_secret_context(CkksParams(4096, (54, 54), 30))
    public_bytes = public_context_bytes(secret_bytes)
    assert not load_context(public_bytes).is_private()
    assert load_context(secret_bytes).is_private()
    with pytest.raises(CkksError, match="secret key"):
        load_context(secret_bytes, require_secret=False)
    with pytest.raises(CkksError, match="public one"):
        load_context(public_bytes, require_secret=True)
    for garbage in (b"", b"not a context", public_bytes[: len(public_bytes) // 2]):
        with pytest.raises(CkksError, match="not a TenSEAL context"):
            load_context(garbage)
    assert context_fingerprint(public_context_bytes(secret_bytes)) == context_fingerprint(
        public_bytes)  # every client names the context alike
    with pytest.raises(CkksError, match="secret"):
        decrypt_vector(load_context(public_bytes), [], 0)
    with pytest.raises(CkksError, match="public context"):
        sum_encrypted(env.secret, [], env.fingerprint, LENGTH)


def _other_context(params=DEFAULT_PARAMS):
    return load_context(create_secret_context(params), require_secret=True)


def _with_chunk(env, update, chunk):
    return dataclasses.replace(update, chunks=[*update.chunks[:-1], chunk])


def _changed(env, update, **changes):
    return dataclasses.replace(update, **changes)


# What the ciphertext checks catch even in a correctly signed update. A flipped byte, another
# context's ciphertext or a bad signature are the signature's job (tests/test_signed_updates.py).
BAD_UPDATES = {
    "truncated chunk": (lambda env, u: _with_chunk(env, u, u.chunks[-1][:-100]), "does not load"),
    "random bytes": (lambda env, u: _with_chunk(env, u, env.rng.bytes(len(u.chunks[-1]))),
                     "does not load"),
    "empty chunk": (lambda env, u: _with_chunk(env, u, b""), "holds 0 values"),
    "other parameters": (lambda env, u: _with_chunk(env, u, encrypt_vector(
        _other_context(CkksParams(4096, (60, 49), 40)), np.ones(SLOTS // 2))[0]), "does not load"),
    "other scale": (lambda env, u: _with_chunk(env, u, encrypt_vector(
        _other_context(CkksParams(4096, (54, 54), 25)), np.ones(SLOTS // 2))[0]), "scale"),
    "oversized chunk": (lambda env, u: _with_chunk(env, u, u.chunks[-1] * 3), "oversized"),
    "wrong chunk count": (lambda env, u: _changed(env, u, chunks=u.chunks[:-1]), "chunks"),
    "wrong length": (lambda env, u: _changed(env, u, length=LENGTH + 1), "length"),
    "wrong fingerprint": (lambda env, u: _changed(env, u, fingerprint="0" * 64),
                          "another context"),
    "no examples": (lambda env, u: _changed(env, u, num_examples=0), "positive integer"),
}


@pytest.mark.parametrize("kind", list(BAD_UPDATES))
def test_a_bad_update_is_rejected_and_the_others_still_summed(env, kind):
    make_bad, reason = BAD_UPDATES[kind]
    weights = [_weights(env.rng) for _ in range(3)]
    counts = [1500, 2200, 3300]
    good = [_update(env, w, n) for w, n in zip(weights, counts, strict=True)]
    bad = make_bad(env, _update(env, _weights(env.rng), 4000))
    average, total, rejected = _average(env, [good[0], bad, *good[1:]])
    assert len(rejected) == 1 and rejected[0][0] == 1 and reason in rejected[0][1]
    assert total == sum(counts)
    expected = sum(n * w for w, n in zip(weights, counts, strict=True)) / sum(counts)
    assert np.abs(average - expected).max() <= 1e-6


def test_a_repeated_update_counts_once(env):
    update = _update(env, _weights(env.rng), 2000)
    _, total, rejected = _average(env, [update, update])
    assert total == 2000 and rejected == [(1, "duplicate of update 0")]


def test_no_acceptable_update_raises(env):
    bad = dataclasses.replace(_update(env, _weights(env.rng), 1000), fingerprint="0" * 64)
    with pytest.raises(CkksError, match="no acceptable update among 2: made under another"):
        sum_encrypted(env.public, [bad, bad], env.fingerprint, LENGTH)
    with pytest.raises(CkksError, match="no acceptable update among 0"):
        sum_encrypted(env.public, [], env.fingerprint, LENGTH)


def test_a_key_holder_can_still_poison_the_sum(env):
    """The documented limit of signatures: a device's signed ciphertext from another context
    loads and turns the sum into garbage."""
    foreign = _update(env, _weights(env.rng), 1000, context=_other_context())
    average, _, rejected = _average(env, [_update(env, _weights(env.rng), 1000), foreign])
    assert rejected == [] and np.abs(average).max() > 1e3
