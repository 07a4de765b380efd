"""Gaps on resamples given as draw counts equal fairness_report on the materialised rows."""

import numpy as np
import pandas as pd
import pytest

from fairleak.errors import DataValidationError
from fairleak.fairness import GAPS, fairness_report, resampled_gaps


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    yhat = np.where(rng.random(n) < 0.7, y, 1 - y)
    sf = pd.DataFrame({"a": rng.choice(["x", "y"], n), "b": rng.choice(["p", "q", "r"], n)})
    return y, yhat, sf


def test_resampled_gaps_equal_the_report_on_the_drawn_rows():
    y, yhat, sf = _data()
    rng = np.random.default_rng(1)
    draws = [np.arange(len(y)), rng.integers(0, len(y), len(y)), rng.integers(0, len(y), len(y))]
    counts = np.stack([np.bincount(d, minlength=len(y)) for d in draws])
    got = resampled_gaps(y, yhat, sensitive_features=sf, counts=counts, min_group_size=1)
    names = [g for g in GAPS if "ece" not in GAPS[g].rates]
    for b, d in enumerate(draws):
        rep = fairness_report(y[d], yhat[d], sensitive_features=sf.iloc[d], n_bootstrap=0, min_group_size=1)
        for view in rep.gaps:
            for g in names:
                want = rep.gaps[view][g].value
                assert (np.isnan(got[view][g][b]) and want is None) or got[view][g][b] == pytest.approx(want, abs=1e-12)


def test_groups_too_small_in_the_data_are_left_out_and_shapes_are_checked():
    y, yhat, sf = _data()
    ones = np.ones((1, len(y)))
    big = resampled_gaps(y, yhat, sensitive_features=sf, counts=ones, min_group_size=10_000)
    assert np.isnan(big["a"]["demographic_parity_difference"]).all()
    with pytest.raises(DataValidationError, match="counts must be"):
        resampled_gaps(y, yhat, sensitive_features=sf, counts=np.ones((2, 3)))
