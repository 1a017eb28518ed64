"""Packing a batch of feature vectors and a linear head into CKKS slots so that a server can
compute every face's logits W x + b with one plaintext multiplication per ciphertext and a
few rotations, and return a ciphertext whose slots hold logits and nothing else.

Layout. For F faces, K classes and d features, pad each to a power of two (Fp, Kp, dp) and let
the stride S = Fp * Kp. Each product W[k, j] * x[f, j] gets slot `j * S + f * Kp + k`. When that
tensor (dp * S values) is larger than one ciphertext's slots, the feature axis is cut into C
chunks of dp / C features, one ciphertext each. A chunk's block of `period = (dp / C) * S`
slots is repeated to fill the ciphertext, so the slot vector is periodic.

Evaluation (server): multiply each chunk by its packed weights and add the C products; every
slot now sums C of the d products. Then `acc += rotate(acc, S * 2^m)` for m = 0..log2(dp/C)-1.
Because the vector is periodic with period `period` and the rotations cover exactly one
period, every slot ends up holding the complete sum over all d features for its (face,
class): the full logit, never a partial sum of x*W. Padding classes and faces hold exact
zeros (their weights or features are zero); the bias is added only at real (face, class) slots.
"""

from dataclasses import dataclass

import numpy as np


def _next_power_of_two(n: int) -> int:
    return 1 << (n - 1).bit_length()


@dataclass(frozen=True)
class PackedLayout:
    """Where each (feature, face, class) product lives in the slots; see the module doc."""

    faces: int
    feature_dim: int
    num_classes: int
    slots: int

    def __post_init__(self) -> None:
        if self.faces < 1 or self.feature_dim < 1 or self.num_classes < 1:
            raise ValueError("faces, feature_dim and num_classes must be at least 1")
        if self.stride > self.slots:
            raise ValueError(f"{self.faces} faces of {self.num_classes} classes do not fit "
                             f"{self.slots} slots")

    @property
    def faces_padded(self) -> int:
        return _next_power_of_two(self.faces)

    @property
    def classes_padded(self) -> int:
        return _next_power_of_two(self.num_classes)

    @property
    def features_padded(self) -> int:
        return _next_power_of_two(self.feature_dim)

    @property
    def stride(self) -> int:
        return self.faces_padded * self.classes_padded

    @property
    def chunks(self) -> int:
        """Ciphertexts carrying the features: the fewest that hold every product."""
        return max(1, self.features_padded * self.stride // self.slots)

    @property
    def features_per_chunk(self) -> int:
        return self.features_padded // self.chunks

    @property
    def period(self) -> int:
        return self.features_per_chunk * self.stride

    @property
    def rotation_steps(self) -> tuple[int, ...]:
        """Left rotations the server applies, in order."""
        steps = []
        step = self.stride
        while step < self.period:
            steps.append(step)
            step *= 2
        return tuple(steps)


def all_rotation_steps(num_classes: int, slots: int) -> list[int]:
    """Every rotation any batch size can need: the powers of two from the padded class count
    up to half the slots. A device generates Galois keys for exactly these."""
    steps, step = [], _next_power_of_two(num_classes)
    while step < slots:
        steps.append(step)
        step *= 2
    return steps


def _by_chunk(values: np.ndarray, layout: PackedLayout) -> np.ndarray:
    """(chunks, features_per_chunk, Fp, Kp) → (chunks, slots) by repeating each period."""
    flat = values.reshape(layout.chunks, layout.period)
    return np.tile(flat, (1, layout.slots // layout.period))


def pack_features(features: np.ndarray, layout: PackedLayout) -> np.ndarray:
    """The device's side: features (F, d) → slot vectors (chunks, slots) to encrypt."""
    if features.shape != (layout.faces, layout.feature_dim):
        raise ValueError(f"expected features of shape {(layout.faces, layout.feature_dim)}, "
                         f"got {features.shape}")
    padded = np.zeros((layout.faces_padded, layout.features_padded))
    padded[: layout.faces, : layout.feature_dim] = features
    per_chunk = padded.T.reshape(layout.chunks, layout.features_per_chunk, layout.faces_padded)
    products = np.broadcast_to(per_chunk[..., None], (*per_chunk.shape, layout.classes_padded))
    return _by_chunk(products, layout)


def pack_weights(weight: np.ndarray, bias: np.ndarray,
                 layout: PackedLayout) -> tuple[np.ndarray, np.ndarray]:
    """The server's side: head weight (K, d) and bias (K,) → weight slot vectors (chunks,
    slots) matching `pack_features`, and the bias slot vector (slots,) to add at the end."""
    if weight.shape != (layout.num_classes, layout.feature_dim) or bias.shape != (
            layout.num_classes,):
        raise ValueError(f"head of shape {weight.shape}/{bias.shape} does not match the layout")
    padded = np.zeros((layout.classes_padded, layout.features_padded))
    padded[: layout.num_classes, : layout.feature_dim] = weight
    per_chunk = padded.T.reshape(layout.chunks, layout.features_per_chunk, 1,
                                 layout.classes_padded)
    products = np.broadcast_to(per_chunk, (layout.chunks, layout.features_per_chunk,
                                           layout.faces_padded, layout.classes_padded))
    bias_block = np.zeros((layout.faces_padded, layout.classes_padded))
    bias_block[: layout.faces, : layout.num_classes] = bias
    return _by_chunk(products, layout), np.tile(bias_block.ravel(), layout.slots // layout.stride)


def unpack_logits(slot_values: np.ndarray, layout: PackedLayout) -> np.ndarray:
    """The device's side after decryption: slot values (slots,) → logits (F, K)."""
    block = np.asarray(slot_values[: layout.stride]).reshape(layout.faces_padded,
                                                            layout.classes_padded)
    return block[: layout.faces, : layout.num_classes]
