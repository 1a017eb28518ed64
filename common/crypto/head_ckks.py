"""The CKKS parameter set of the encrypted head, shared by the device and the server.

The head W x + b needs one multiplication depth: ciphertext-times-plaintext, one rescale, then
rotations and additions. N = 8192 with a [60, 40, 60]-bit modulus chain (160 of the 218 bits
SEAL allows at 128-bit security) and scale 2^40 leaves logits accurate to about 1e-6 and gives
4096 slots, room for four faces' packed features per ciphertext. A smaller ring (N = 4096)
is 2x faster per ciphertext but leaves a 2^30 scale and logit errors near 1e-4.
"""

from dataclasses import dataclass

import tenseal.sealapi as seal


@dataclass(frozen=True)
class HeadCkksParams:
    """CKKS ring degree, modulus chain (bits per prime; the last is the key-switching prime)
    and the encoding scale, as a power of two."""

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40, 60)
    scale_bits: int = 40

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def scale(self) -> float:
        return 2.0 ** self.scale_bits


HEAD_PARAMS = HeadCkksParams()


def encryption_parameters(params: HeadCkksParams = HEAD_PARAMS) -> seal.EncryptionParameters:
    """SEAL's CKKS parameters for `params` (the moduli SEAL picks for given bit sizes are
    deterministic, so device and server build identical ones)."""
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(params.poly_modulus_degree)
    parms.set_coeff_modulus(
        seal.CoeffModulus.Create(params.poly_modulus_degree, list(params.coeff_mod_bit_sizes)))
    return parms


def seal_context(parms: seal.EncryptionParameters) -> seal.SEALContext:
    """A SEAL context for `parms`, refusing any set below 128-bit security."""
    context = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
    if not context.parameters_set():
        raise ValueError(f"CKKS parameters rejected: {context.parameters_error_message()}")
    return context


def galois_elements(steps: list[int], params: HeadCkksParams = HEAD_PARAMS) -> list[int]:
    """SEAL Galois elements for left rotations by `steps` slots (3^step mod 2N), the form
    in which `KeyGenerator.create_galois_keys` takes the rotations it should allow."""
    return [pow(3, step, 2 * params.poly_modulus_degree) for step in steps]
