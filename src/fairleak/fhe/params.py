"""CKKS parameters chosen from a model's multiplicative depth, at 128-bit security.

A CKKS ciphertext loses one prime of its coefficient modulus per multiplication it goes through
(rescaling). A model of depth d needs ``d`` primes of ``scale_bits`` bits (the scale
Δ = 2^scale_bits) between two outer primes of 60 bits: the first is the modulus left at the end
(60 - scale_bits bits of room for the decrypted values: |score| < 2^19 with the defaults), the last
is SEAL's special prime for key switching. The total bit count then sets the smallest ring
dimension N that keeps 128-bit security: the Homomorphic Encryption Standard (Albrecht et al.
2018, Table 1: uniform ternary secret, classical attacks) allows at most
``HE_STANDARD_MAX_BITS_128[N]`` bits. SEAL (inside TenSEAL) enforces the same table and refuses
larger moduli; checking it here gives a message that names the depth and the fix instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fairleak.errors import ParameterError

__all__ = ["HE_STANDARD_MAX_BITS_128", "CKKSParameters", "ckks_parameters"]

# Homomorphic Encryption Standard (homomorphicencryption.org, 2018), Table 1, 128-bit classical
# security, ternary secret: N -> largest log2(q). Equal to SEAL's CoeffModulus::MaxBitCount(N,
# sec_level_type::tc128) (tested).
HE_STANDARD_MAX_BITS_128: dict[int, int] = {
    1024: 27,
    2048: 54,
    4096: 109,
    8192: 218,
    16384: 438,
    32768: 881,
}
_OUTER_BITS = 60  # SEAL's largest prime size: the final modulus and the special prime
_AUTO_DEGREES = (8192, 16384, 32768)  # below 8192 not even depth 1 fits with a 2^40 scale


@dataclass(frozen=True)
class CKKSParameters:
    """CKKS encryption parameters: ring dimension ``poly_modulus_degree`` (N, N/2 slots per
    ciphertext), prime sizes ``coeff_mod_bit_sizes`` and the scale 2^``scale_bits``."""

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int

    @property
    def depth(self) -> int:
        """Multiplicative depth available: the primes between the two outer ones."""
        return len(self.coeff_mod_bit_sizes) - 2

    @property
    def total_bits(self) -> int:
        return sum(self.coeff_mod_bit_sizes)

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def max_bits_128(self) -> int:
        return HE_STANDARD_MAX_BITS_128[self.poly_modulus_degree]

    @property
    def security_statement(self) -> str:
        return (
            f"CKKS, N = {self.poly_modulus_degree}, coefficient modulus {self.total_bits} bits "
            f"({'+'.join(map(str, self.coeff_mod_bit_sizes))}) <= {self.max_bits_128} bits allowed "
            f"for 128-bit security at this N (HE Standard 2018, Table 1; enforced by SEAL), "
            f"scale 2^{self.scale_bits}, depth {self.depth}."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": "CKKS",
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "total_bits": self.total_bits,
            "scale_bits": self.scale_bits,
            "depth": self.depth,
            "slots": self.slots,
            "security_bits": 128,
            "max_bits_at_128": self.max_bits_128,
            "security": self.security_statement,
        }


def _max_depth(n: int, scale_bits: int) -> int:
    return (HE_STANDARD_MAX_BITS_128[n] - 2 * _OUTER_BITS) // scale_bits


def ckks_parameters(
    depth: int, *, poly_modulus_degree: int | None = None, scale_bits: int = 40
) -> CKKSParameters:
    """The smallest 128-bit-secure CKKS parameters for a computation of multiplicative ``depth``.

    ``poly_modulus_degree`` fixes N instead of choosing the smallest that fits (a model deeper
    than that N allows is refused with a message naming the largest depth it holds).
    ``scale_bits`` (20 to 50) trades precision (more bits) for depth per N (fewer bits).
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ParameterError(
            f"The 'depth' parameter of ckks_parameters must be an int in the range [1, inf). Got {depth!r} instead."
        )
    if (
        isinstance(scale_bits, bool)
        or not isinstance(scale_bits, int)
        or not 20 <= scale_bits <= 50
    ):
        raise ParameterError(
            f"The 'scale_bits' parameter of ckks_parameters must be an int in the range [20, 50]. Got {scale_bits!r} instead."
        )
    if poly_modulus_degree is not None and poly_modulus_degree not in HE_STANDARD_MAX_BITS_128:
        raise ParameterError(
            f"The 'poly_modulus_degree' parameter of ckks_parameters must be one of "
            f"{sorted(HE_STANDARD_MAX_BITS_128)} or None (chosen from the depth). Got {poly_modulus_degree!r} instead."
        )
    bits = (_OUTER_BITS, *([scale_bits] * depth), _OUTER_BITS)
    need = sum(bits)
    candidates = _AUTO_DEGREES if poly_modulus_degree is None else (poly_modulus_degree,)
    for n in candidates:
        if need <= HE_STANDARD_MAX_BITS_128[n]:
            return CKKSParameters(n, bits, scale_bits)
    if poly_modulus_degree is not None:
        n = poly_modulus_degree
        hint = next(
            (
                f"poly_modulus_degree={m}"
                for m in _AUTO_DEGREES
                if need <= HE_STANDARD_MAX_BITS_128[m]
            ),
            "a shallower model",
        )
        raise ParameterError(
            f"A model of multiplicative depth {depth} needs a {need}-bit coefficient modulus "
            f"({_OUTER_BITS} + {depth} x {scale_bits} + {_OUTER_BITS}); poly_modulus_degree={n} allows "
            f"at most {HE_STANDARD_MAX_BITS_128[n]} bits at 128-bit security, i.e. depth <= "
            f"{max(_max_depth(n, scale_bits), 0)}. Use {hint}, or leave poly_modulus_degree unset."
        )
    top = _AUTO_DEGREES[-1]
    raise ParameterError(
        f"A model of multiplicative depth {depth} needs a {need}-bit coefficient modulus, more than "
        f"the {HE_STANDARD_MAX_BITS_128[top]} bits that N = {top} allows at 128-bit security "
        f"(depth <= {_max_depth(top, scale_bits)} at scale 2^{scale_bits}); CKKS without "
        f"bootstrapping cannot evaluate it. Use fewer square layers (each costs depth 2)."
    )
