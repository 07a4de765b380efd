"""PublicReduction: the client-side projection fitted on public rows (no TenSEAL needed)."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.feature_selection import f_classif
from sklearn.utils.estimator_checks import parametrize_with_checks

from fairleak.errors import ParameterError
from fairleak.fhe import PublicReduction


@parametrize_with_checks([PublicReduction(), PublicReduction(2)])
def test_scikit_learn_transformer_contract(estimator, check):
    check(estimator)


def test_pca_is_fitted_on_public_rows_only_and_clips_to_their_range():
    rng = np.random.default_rng(0)
    public = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    private = 10 * rng.normal(size=(40, 5))  # far outside the public range
    red = PublicReduction(3, random_state=0).fit(public)
    ref = PCA(n_components=3, random_state=0).fit(public)
    np.testing.assert_allclose(red.transform(public), ref.transform(public), atol=1e-10)
    Z = red.transform(private)
    raw = ref.transform(private)
    assert Z.shape == (40, 3) and red.n_outputs == 3
    np.testing.assert_allclose(Z, np.clip(raw, red.lower_, red.upper_))
    assert (Z != raw).any()  # some private rows were clipped
    assert np.array_equal(PublicReduction(3, clip=False).fit(public).transform(private).round(8),
                          raw.round(8))  # fmt: skip


def test_f_classif_keeps_the_columns_with_the_largest_f_statistic():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 6))
    y = (X[:, 4] + 0.5 * X[:, 1] > 0).astype(int)  # planted: columns 4 and 1 matter
    red = PublicReduction(2, method="f_classif").fit(X, y)
    assert set(np.flatnonzero(red.transformer_.get_support())) == {1, 4}
    F, _ = f_classif(X, y)
    assert set(np.argsort(F)[-2:]) == {1, 4}


@pytest.mark.parametrize(
    ("est", "match"),
    [
        (PublicReduction(0), r"'n_components' .* \[1, 4\] .* Got 0"),
        (PublicReduction(5), r"'n_components' .* Got 5"),
        (PublicReduction(2, method="dct"), r"'method' .* Got 'dct'"),
        (PublicReduction(2, method="f_classif"), "pass the public rows' labels as y"),
    ],
)
def test_bad_settings_get_a_message(est, match):
    with pytest.raises(ParameterError, match=match):
        est.fit(np.random.default_rng(0).normal(size=(20, 4)))
