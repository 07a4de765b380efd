"""Attack metrics on resamples given as draw counts equal attack_metrics on the drawn rows."""

import numpy as np
import pytest

from fairleak.attacks import attack_metrics, resampled_attack_metrics
from fairleak.errors import DataValidationError
from fairleak.selection import bootstrap_indices


def test_resampled_metrics_equal_the_metrics_of_the_drawn_rows():
    rng = np.random.default_rng(0)
    n = 600
    m = rng.random(n) < 0.5
    s = np.round(rng.normal(size=n) + 0.4 * m, 1)  # rounding: ties
    draws = bootstrap_indices(n, 4, seed=3, strata=m)
    counts = np.vstack([np.ones(n, int), np.stack([np.bincount(d, minlength=n) for d in draws])])
    got = resampled_attack_metrics(s, m, counts)
    for b, d in enumerate([np.arange(n), *draws]):
        want = attack_metrics(s[d], m[d], n_bootstrap=0)
        assert got["auc"][b] == pytest.approx(want.auc, abs=1e-12)
        assert got["tpr_at_1%_fpr"][b] == pytest.approx(want.tpr_at_1_fpr, abs=1e-12)
        assert got["advantage"][b] == pytest.approx(want.advantage, abs=1e-12)


def test_members_and_non_members_must_keep_their_totals():
    m = np.array([True, True, False, False])
    with pytest.raises(DataValidationError, match="resample them separately"):
        resampled_attack_metrics([0.1, 0.2, 0.3, 0.4], m, [[3, 0, 0, 1]])
