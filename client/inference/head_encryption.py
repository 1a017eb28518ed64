"""The device's CKKS keys for encrypted head inference: a fresh secret key per session that
never leaves this process, and the public material (parameters, Galois keys) the server needs.

Features are encrypted symmetrically with the secret key: SEAL then stores half of each fresh
ciphertext as a PRNG seed, so uploads are half the size of public-key encryptions, and no
public encryption key is ever created or sent.
"""

import numpy as np
import tenseal.sealapi as seal

from emofl.common.crypto import seal_bytes
from emofl.common.crypto.head_ckks import (
    HEAD_PARAMS,
    HeadCkksParams,
    encryption_parameters,
    galois_elements,
    seal_context,
)
from emofl.common.crypto.packed_head import (
    PackedLayout,
    all_rotation_steps,
    pack_features,
    unpack_logits,
)

# A returned ciphertext at the last level of N = 8192 is ~130 kB; this bound is generous.
MAX_REPLY_BYTES = 4 * 1024 * 1024


class DeviceHeadKeys:
    """A session's secret key, and encryption/decryption of packed features and logits."""

    def __init__(self, num_classes: int, params: HeadCkksParams = HEAD_PARAMS) -> None:
        self.params = params
        self.num_classes = num_classes
        self._parms = encryption_parameters(params)
        self.context = seal_context(self._parms)
        keygen = seal.KeyGenerator(self.context)
        secret_key = keygen.secret_key()
        steps = all_rotation_steps(num_classes, params.slots)
        self._galois = keygen.create_galois_keys(galois_elements(steps, params))
        self._encryptor = seal.Encryptor(self.context, secret_key)
        self._decryptor = seal.Decryptor(self.context, secret_key)
        self._encoder = seal.CKKSEncoder(self.context)

    def public_material(self) -> tuple[bytes, bytes]:
        """(encryption parameters, Galois keys) as bytes: everything the server may hold."""
        return seal_bytes.to_bytes(self._parms), seal_bytes.to_bytes(self._galois)

    def encrypt_features(self, features: np.ndarray, layout: PackedLayout) -> list[bytes]:
        """Features (F, d) packed per `layout` and encrypted, one ciphertext per chunk."""
        blobs = []
        for slot_values in pack_features(features, layout):
            plain = seal.Plaintext()
            self._encoder.encode(slot_values.tolist(), self.context.first_parms_id(),
                                 self.params.scale, plain)
            blobs.append(seal_bytes.to_bytes(self._encryptor.encrypt_symmetric(plain)))
        return blobs

    def decrypt_slots(self, reply: bytes) -> np.ndarray:
        """Every slot of a returned ciphertext (the service's reply, decrypted)."""
        cipher = seal_bytes.load(seal.Ciphertext, self.context, reply, MAX_REPLY_BYTES,
                                 "the server's reply")
        plain = seal.Plaintext()
        self._decryptor.decrypt(cipher, plain)
        return np.asarray(self._encoder.decode_double(plain))

    def decrypt_logits(self, reply: bytes, layout: PackedLayout) -> np.ndarray:
        """Logits (F, K) from a returned ciphertext."""
        return unpack_logits(self.decrypt_slots(reply), layout)
