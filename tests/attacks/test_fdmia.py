"""FD-MIA: identical pairs carry no discrepancy signal; a real shift is picked up."""

import numpy as np
import pytest

from fairleak.attacks.fdmia import fd_mia
from fairleak.audit import run_fd_mia
from fairleak.data import make_audit_split, make_synthetic
from fairleak.train import FairnessConfig, TrainConfig


def _probs(p1):
    return np.column_stack([1 - p1, p1])


def test_identical_pair_is_at_chance():
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.integers(0, 2, n)
    is_member = rng.random(n) < 0.5
    p = _probs(np.clip(rng.random(n) + 0.2 * is_member * (2 * y - 1), 0.01, 0.99))
    sp = _probs(rng.random(n))
    sy = rng.integers(0, 2, n)
    sm = rng.random(n) < 0.5
    res = fd_mia(p, p, y, is_member, sp, sp, sy, sm, n_bootstrap=0)
    for name in ("fd_mia_abs", "fd_mia_signed"):
        assert res.attacks[name].metrics.auc == pytest.approx(0.5)  # no discrepancy, no signal
    assert np.all(res.discrepancy_members == 0)
    # the baselines still see the single model's leak: FD-MIA's zero is not a broken pipeline
    assert res.attacks["threshold_loss_biased"].metrics.auc > 0.55


def test_discrepancy_signal_is_found_when_it_exists():
    rng = np.random.default_rng(1)
    n = 3000

    def pair(member):
        y = rng.integers(0, 2, n)
        pb = rng.uniform(0.3, 0.9, n)
        pf = np.clip(
            pb - 0.2 * member + rng.normal(0, 0.05, n), 0.01, 0.99
        )  # fairness moves members
        return y, _probs(np.where(y == 1, pb, 1 - pb)), _probs(np.where(y == 1, pf, 1 - pf))

    m = rng.random(n) < 0.5
    y, pb, pf = pair(m)
    sm = rng.random(n) < 0.5
    sy, spb, spf = pair(sm)
    res = fd_mia(pb, pf, y, m, spb, spf, sy, sm, n_bootstrap=0)
    assert res.attacks["fd_mia_abs"].metrics.auc > 0.9
    assert res.attacks["fd_mia_learned"].metrics.auc > 0.9
    assert res.attacks["threshold_loss_biased"].metrics.auc == pytest.approx(0.5, abs=0.05)
    h = res.to_dict()["discrepancy_histogram"]
    assert sum(h["members"]) == m.sum() and sum(h["nonmembers"]) == (~m).sum()


def _run_driver(weight, epochs):
    ds = make_synthetic(1200, n_features=4, shift=2.0, seed=3)
    X = ds.features.to_numpy(np.float32).copy()
    g = (ds.sensitive["group"] == "minority").to_numpy().astype(np.int64)
    sp = make_audit_split(len(ds), seed=0)
    return run_fd_mia(
        X, ds.y, g, sp.members, sp.nonmembers, sp.population,
        fairness=FairnessConfig(penalty="demographic_parity", weight=weight),
        config=TrainConfig(hidden=(16,), epochs=epochs), n_bootstrap=0,
        groups_audit=ds.sensitive.iloc[sp.audit],
    )  # fmt: skip


def test_driver_trains_pairs_in_one_call():
    res = _run_driver(2.0, 5)
    assert res.fairness_weight == 2.0
    assert {"fd_mia_abs", "fd_mia_signed", "fd_mia_learned", "shadow_biased", "shadow_fair"} <= set(
        res.attacks
    )
    assert "group" in res.attacks["fd_mia_abs"].metrics.by_group
    assert res.discrepancy_members.mean() > 0  # the two models really differ


def test_driver_pair_without_intervention_is_identical_and_at_chance():
    """Weight 0: the 'fair' model is the biased one (shared seed), so FD-MIA has nothing to use."""
    res = _run_driver(0.0, 3)
    assert np.all(res.discrepancy_members == 0) and np.all(res.discrepancy_nonmembers == 0)
    assert res.attacks["fd_mia_abs"].metrics.auc == pytest.approx(0.5)
