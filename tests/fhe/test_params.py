"""CKKS parameters from a model's depth: the smallest 128-bit-secure ring, and clear refusals."""

import pytest

from fairleak.errors import ParameterError
from fairleak.fhe import HE_STANDARD_MAX_BITS_128, ckks_parameters


def test_depth_1_and_2_fit_n8192_deeper_models_get_larger_rings():
    lr = ckks_parameters(1)
    assert (lr.poly_modulus_degree, lr.coeff_mod_bit_sizes) == (8192, (60, 40, 60))
    mlp = ckks_parameters(2)  # one square layer, output folded
    assert (mlp.poly_modulus_degree, mlp.coeff_mod_bit_sizes) == (8192, (60, 40, 40, 60))
    assert mlp.total_bits == 200 <= 218 and mlp.slots == 4096
    assert ckks_parameters(3).poly_modulus_degree == 16384  # 240 bits > 218
    assert ckks_parameters(4).poly_modulus_degree == 16384
    assert ckks_parameters(8).poly_modulus_degree == 32768  # 440 bits > 438
    assert ckks_parameters(2, scale_bits=30).coeff_mod_bit_sizes == (60, 30, 30, 60)


@pytest.mark.parametrize("depth", range(1, 20))
def test_every_choice_is_within_the_128_bit_table_and_has_the_depth(depth):
    p = ckks_parameters(depth)
    assert p.depth == depth
    assert p.total_bits <= HE_STANDARD_MAX_BITS_128[p.poly_modulus_degree]
    smaller = p.poly_modulus_degree // 2
    assert smaller < 8192 or p.total_bits > HE_STANDARD_MAX_BITS_128[smaller]  # smallest that fits
    d = p.to_dict()
    assert d["security_bits"] == 128 and "128-bit" in d["security"]


def test_table_is_seals_128_bit_table():
    sealapi = pytest.importorskip("tenseal.sealapi", reason="TenSEAL (extra 'fhe') not installed")
    for n, bits in HE_STANDARD_MAX_BITS_128.items():
        assert sealapi.CoeffModulus.MaxBitCount(n, sealapi.SEC_LEVEL_TYPE.TC128) == bits


def test_model_too_deep_for_the_chosen_ring_names_the_limit_and_the_fix():
    with pytest.raises(
        ParameterError,
        match=r"depth 4 needs a 280-bit .* allows at most 218 bits .* depth <= 2\. Use poly_modulus_degree=16384",
    ):
        ckks_parameters(4, poly_modulus_degree=8192)
    with pytest.raises(ParameterError, match="cannot evaluate it"):
        ckks_parameters(20)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": 0}, r"'depth' parameter .* Got 0 instead"),
        ({"depth": 2.0}, r"'depth' parameter .* Got 2\.0 instead"),
        ({"depth": 1, "scale_bits": 10}, r"'scale_bits' parameter .* \[20, 50\]\. Got 10"),
        ({"depth": 1, "poly_modulus_degree": 1000}, r"'poly_modulus_degree' parameter .* Got 1000"),
    ],
)
def test_bad_parameters_are_refused_with_a_message(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        ckks_parameters(**kwargs)
