"""Attacks checked on cases with a known answer, and their parts against direct computations."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve

from fairleak.attacks import (
    attack_metrics,
    best_threshold,
    lira_scores,
    logit_scaled_confidence,
    membership_score,
    paired_half_masks,
    restrict_output,
    rmia_likelihood_ratio,
    rmia_scores,
    rmia_scores_direct,
    threshold_for_fpr,
    tpr_at_fpr,
)
from fairleak.audit import run_attacks
from fairleak.data import make_synthetic
from fairleak.errors import DataValidationError
from fairleak.train import TrainConfig, train_ensemble

MEMORISE = TrainConfig(hidden=(128,), epochs=150, batch_size=32, lr=3e-3)


@pytest.fixture(scope="module")
def noisy():
    ds = make_synthetic(1000, n_features=10, label_noise=3.0, seed=0)  # labels barely learnable
    X = ds.features.to_numpy(np.float32).copy()
    is_member = np.zeros(400, dtype=bool)
    is_member[:200] = True
    return X, ds.y, ds.sensitive, is_member


def _auc_se(n_in, n_out):
    return np.sqrt((n_in + n_out + 1) / (12 * n_in * n_out))  # AUC's SE under the null


@pytest.fixture(scope="module")
def memorised(noisy):
    X, y, sens, is_member = noisy
    target = train_ensemble(X[:400], y[:400], is_member[None], config=MEMORISE, seed=0)
    return run_attacks(
        target, X[:400], y[:400], is_member, X[400:], y[400:], n_reference=16, n_shadow=4,
        config=MEMORISE, n_bootstrap=0, groups_audit=sens.iloc[:400],
    )  # fmt: skip


def test_memorising_model_is_exposed_and_lira_ordering(memorised):
    m = {k: r.metrics for k, r in memorised.items()}
    assert m["lira_online"].auc > 0.72
    assert m["lira_online"].tpr_at_1_fpr > 0.02  # non-trivial: above the 1% of a random guess
    assert m["lira_online"].auc >= m["lira_offline"].auc >= m["threshold_loss"].auc
    for name in ("shadow", "rmia_online", "rmia_offline", "threshold_loss"):
        assert m[name].auc > 0.6, name


def test_never_trained_members_give_chance(noisy):
    X, y, _, is_member = noisy
    # the target never saw the audit points: "members" are members in name only
    target = train_ensemble(
        X[400:], y[400:], np.ones((1, 600), dtype=bool), config=MEMORISE, seed=0
    )
    res = run_attacks(target, X[:400], y[:400], is_member, X[400:], y[400:], n_reference=16,
                      n_shadow=4, config=MEMORISE, n_bootstrap=0)  # fmt: skip
    se = _auc_se(200, 200)
    for name, r in res.items():
        assert abs(r.metrics.auc - 0.5) < 3.5 * se, (name, r.metrics.auc)


def test_sklearn_target_and_reference_models_via_clone(noisy):
    X, y, _, is_member = noisy
    est = LogisticRegression(max_iter=200)
    target = LogisticRegression(max_iter=200).fit(X[:200], y[:200])
    res = run_attacks(
        target, X[:400], y[:400], is_member, X[400:], y[400:], attacks=["threshold_loss", "lira_online"],
        n_reference=8, estimator=est, n_bootstrap=0,
    )  # fmt: skip
    assert set(res) == {"threshold_loss", "lira_online"}
    assert 0.3 < res["lira_online"].metrics.auc < 0.8  # a linear model leaks little


def test_rmia_sorted_counting_equals_direct_matrix():
    rng = np.random.default_rng(0)
    for _ in range(5):
        lr_x = rng.lognormal(size=300)
        lr_z = np.concatenate([rng.lognormal(size=500), lr_x[:50]])  # ties with x values
        for gamma in (1.0, 1.5, 2.0):
            np.testing.assert_array_equal(
                rmia_scores(lr_x, lr_z, gamma), rmia_scores_direct(lr_x, lr_z, gamma)
            )
    # adjacent floats, where the ratio rounds to exactly 1.0
    z = np.array([1.0, np.nextafter(1.0, 2.0), 2.0])
    x = np.array([np.nextafter(1.0, 2.0), 1.0, 2.0])
    np.testing.assert_array_equal(rmia_scores(x, z), rmia_scores_direct(x, z))


def test_rmia_likelihood_ratio_online_and_offline():
    p_t = np.array([0.9, 0.5])
    p_r = np.array([[0.8, 0.4], [0.6, 0.6]])
    np.testing.assert_allclose(rmia_likelihood_ratio(p_t, p_r), p_t / np.array([0.7, 0.5]))
    ref_in = np.array([[True, False], [False, False]])
    # offline: p_out from the model(s) that did not train on x, corrected with a
    px = ((1 + 0.3) * np.array([0.6, 0.5]) + 0.7) / 2
    np.testing.assert_allclose(
        rmia_likelihood_ratio(p_t, p_r, ref_in=ref_in, offline_a=0.3), p_t / px
    )


def test_lira_matches_the_gaussian_formula():
    rng = np.random.default_rng(1)
    K, N = 40, 30
    ref = rng.normal(size=(K, N))
    ref_in = paired_half_masks(N, K, seed=2)
    ref = ref + 2.0 * ref_in
    t = rng.normal(size=N) + 1.0
    on = lira_scores(t, ref, ref_in)
    j = 7
    ins, outs = ref[ref_in[:, j], j], ref[~ref_in[:, j], j]
    expected = norm.logpdf(t[j], ins.mean(), ins.std(ddof=1)) - norm.logpdf(
        t[j], outs.mean(), outs.std(ddof=1)
    )
    assert on[j] == pytest.approx(expected)
    off = lira_scores(t, ref, ref_in, mode="offline")
    assert off[j] == pytest.approx(norm.logcdf((t[j] - outs.mean()) / outs.std(ddof=1)))
    fixed = lira_scores(t, ref, ref_in, fixed_variance=True)
    assert np.isfinite(fixed).all() and not np.allclose(fixed, on)


def test_logit_scaled_confidence_is_stable_from_logits():
    z = np.array([[0.0, 40.0], [3.0, 1.0]])
    y = np.array([1, 0])
    phi = logit_scaled_confidence(z, y)
    np.testing.assert_allclose(phi, [40.0, 2.0])  # p_y rounds to 1.0 in float64, phi does not
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert logit_scaled_confidence(p, y, from_probabilities=True)[0] < 40.0  # clipped, less exact


def test_scores_order_members_above_nonmembers():
    p = np.array([[0.1, 0.9], [0.6, 0.4]])
    y = np.array([1, 1])
    for kind in ("loss", "confidence", "modified_entropy", "correctness"):
        s = membership_score(p, y, kind)
        assert s[0] > s[1], kind
    with pytest.raises(DataValidationError, match="Unknown membership score"):
        membership_score(p, y, "vibes")


def test_metrics_agree_with_sklearn_and_are_conservative():
    rng = np.random.default_rng(0)
    m = rng.random(1500) < 0.5
    s = np.round(rng.normal(size=1500) + 0.7 * m, 1)  # many ties
    res = attack_metrics(s, m, n_bootstrap=100)
    fpr, tpr, _ = roc_curve(m, s)
    assert res.auc == pytest.approx(roc_auc_score(m, s), abs=1e-12)
    assert res.tpr_at_1_fpr == pytest.approx(tpr_at_fpr(fpr, tpr, 0.01))
    assert res.advantage == pytest.approx(np.max(tpr - fpr))
    assert res.ci["auc"][0] < res.auc < res.ci["auc"][1]
    assert res.n_members == m.sum() and res.n_nonmembers == (~m).sum()
    assert any("0.1% FPR" in w for w in res.warnings)  # < 1000 non-members at 0.1% FPR


def test_metrics_exact_on_large_audits_and_bootstrap_width_shrinks_with_n():
    """Counts are multiplied in int64: 120,000 members x 120,000 non-members overflow int32."""
    rng = np.random.default_rng(1)
    m = rng.random(240_000) < 0.5
    s = np.round(rng.normal(size=m.size) + 0.2 * m, 2)
    res = attack_metrics(s, m, n_bootstrap=20)
    fpr, tpr, _ = roc_curve(m, s)
    assert res.auc == pytest.approx(roc_auc_score(m, s), abs=1e-12)
    assert res.advantage == pytest.approx(np.max(tpr - fpr), abs=1e-12)
    small = attack_metrics(s[:2000], m[:2000], n_bootstrap=200)
    width = lambda r: r.ci["auc"][1] - r.ci["auc"][0]  # noqa: E731
    assert width(small) > 5 * width(res)  # ~sqrt(120) times wider with 120x fewer points


def test_per_group_metrics_equal_metrics_on_each_subset(memorised, noisy):
    _, _, sens, is_member = noisy
    r = memorised["lira_online"]
    labels = sens["group"].to_numpy()[:400]
    for g, gm in r.metrics.by_group["group"].items():
        sel = labels == g
        sub = attack_metrics(r.scores[sel], is_member[sel], n_bootstrap=0)
        assert gm.auc == pytest.approx(sub.auc, abs=1e-12)
        assert gm.tpr_at_1_fpr == pytest.approx(sub.tpr_at_1_fpr, abs=1e-12)
        assert (gm.n_members, gm.n_nonmembers) == (sub.n_members, sub.n_nonmembers)


def test_thresholds_chosen_without_audit_labels():
    rng = np.random.default_rng(0)
    pop = rng.normal(size=10_000)
    rule = threshold_for_fpr(pop, 0.01)
    assert (rule.predict(pop)).mean() <= 0.01
    b = best_threshold(rng.normal(1, 1, 2000), rng.normal(0, 1, 2000))
    assert 0.2 < b.threshold < 0.8
    flipped = best_threshold(rng.normal(-1, 1, 2000), rng.normal(0, 1, 2000), learn_direction=True)
    assert flipped.direction == -1


def test_label_only_output_restriction(memorised, noisy):
    p = np.array([[0.2, 0.8], [0.7, 0.3]])
    np.testing.assert_array_equal(restrict_output(p, "label_only"), [[0, 1], [1, 0]])
    np.testing.assert_allclose(restrict_output(p, "top1"), p)  # binary: top-1 reveals everything


def test_bad_inputs():
    with pytest.raises(DataValidationError, match="differ in length"):
        attack_metrics([0.1, 0.2], [True])
    with pytest.raises(DataValidationError, match="no OUT reference model"):
        lira_scores(np.zeros(2), np.zeros((2, 2)), np.ones((2, 2), dtype=bool))
    with pytest.raises(DataValidationError, match="even number"):
        paired_half_masks(10, 3)
