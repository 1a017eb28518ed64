"""The server's half of encrypted inference: W x + b on packed, CKKS-encrypted features.

The evaluator holds the head's weights in the clear and never a secret key; it encodes the
packed weights once per batch shape and reuses them for every session, since plaintexts depend
only on the public parameters.
"""

import threading

import numpy as np
import tenseal.sealapi as seal

from emofl.common.crypto.head_ckks import (
    HEAD_PARAMS,
    HeadCkksParams,
    encryption_parameters,
    seal_context,
)
from emofl.common.crypto.packed_head import PackedLayout, pack_weights

# Relative tolerance on a fresh ciphertext's scale: anything else was not encoded for us.
SCALE_TOLERANCE = 1e-9


class HeadRequestError(ValueError):
    """A batch of ciphertexts that does not match the layout or the parameters."""


class PackedHeadEvaluator:
    """Evaluates one linear head on batches of encrypted, packed features."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray,
                 params: HeadCkksParams = HEAD_PARAMS) -> None:
        self.weight = np.asarray(weight, dtype=np.float64)
        self.bias = np.asarray(bias, dtype=np.float64)
        self.params = params
        self.context = seal_context(encryption_parameters(params))
        self._evaluator = seal.Evaluator(self.context)
        self._encoder = seal.CKKSEncoder(self.context)
        self._plaintexts: dict[int, tuple[list[seal.Plaintext], seal.Plaintext]] = {}
        self._lock = threading.Lock()

    @property
    def num_classes(self) -> int:
        return self.weight.shape[0]

    @property
    def feature_dim(self) -> int:
        return self.weight.shape[1]

    def layout(self, faces: int) -> PackedLayout:
        return PackedLayout(faces, self.feature_dim, self.num_classes, self.params.slots)

    def _encoded_head(self, layout: PackedLayout) -> tuple[list[seal.Plaintext], seal.Plaintext]:
        """Packed weights at the first level and bias at the level after one rescale."""
        with self._lock:
            if layout.faces not in self._plaintexts:
                weights, bias = pack_weights(self.weight, self.bias, layout)
                encoded = []
                for values in weights:
                    plain = seal.Plaintext()
                    self._encoder.encode(values.tolist(), self.context.first_parms_id(),
                                         self.params.scale, plain)
                    encoded.append(plain)
                bias_plain = seal.Plaintext()
                next_level = self.context.first_context_data().next_context_data().parms_id()
                self._encoder.encode(bias.tolist(), next_level, self._result_scale(), bias_plain)
                self._plaintexts[layout.faces] = (encoded, bias_plain)
            return self._plaintexts[layout.faces]

    def _result_scale(self) -> float:
        """The scale after multiplying two scale-Δ values and dropping the second prime."""
        dropped = self.context.first_context_data().parms().coeff_modulus()[-1].value()
        return self.params.scale * self.params.scale / dropped

    def _check(self, cipher: seal.Ciphertext, index: int) -> None:
        if cipher.size() != 2 or cipher.parms_id() != self.context.first_parms_id():
            raise HeadRequestError(f"ciphertext {index} is not a fresh encryption under the "
                                   "advertised parameters")
        if abs(cipher.scale / self.params.scale - 1) > SCALE_TOLERANCE:
            raise HeadRequestError(f"ciphertext {index} is not encoded at scale "
                                   f"2^{self.params.scale_bits}")

    def evaluate(self, ciphertexts: list[seal.Ciphertext], faces: int,
                 galois_keys: seal.GaloisKeys) -> seal.Ciphertext:
        """The encrypted logits of `faces` faces whose packed features are `ciphertexts`."""
        layout = self.layout(faces)
        if len(ciphertexts) != layout.chunks:
            raise HeadRequestError(f"{faces} faces need {layout.chunks} ciphertexts, "
                                   f"got {len(ciphertexts)}")
        for index, cipher in enumerate(ciphertexts):
            self._check(cipher, index)
        weights, bias = self._encoded_head(layout)
        total = seal.Ciphertext()
        self._evaluator.multiply_plain(ciphertexts[0], weights[0], total)
        for cipher, weight in zip(ciphertexts[1:], weights[1:], strict=True):
            self._evaluator.multiply_plain_inplace(cipher, weight)
            self._evaluator.add_inplace(total, cipher)
        self._evaluator.rescale_to_next_inplace(total)
        for step in layout.rotation_steps:
            rotated = seal.Ciphertext()
            self._evaluator.rotate_vector(total, step, galois_keys, rotated)
            self._evaluator.add_inplace(total, rotated)
        self._evaluator.add_plain_inplace(total, bias)
        return total
