"""Empirical epsilon lower bounds (ALGORITHMS-2.md section 9): closed forms, scipy oracles,
randomised response with a known epsilon, and planted group effects."""

import json
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from scipy.stats import binom, binomtest

from fairleak.attacks import (
    EpsilonBound,
    audit_epsilon,
    clopper_pearson_upper,
    multi_run_ceiling,
    one_run_epsilon,
    one_run_p_value,
    split_halves,
)
from fairleak.errors import DataValidationError, ParameterError

EPS_RR = 2.0
Q_RR = float(expit(EPS_RR))  # 0.881: randomised response with epsilon = 2 tells the truth this often


def _randomised_response(S: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The "training algorithm": releases each canary's bit truthfully with probability q, so
    it is exactly 2-DP in each canary (the worst case the one-run theorem is tight for)."""
    return np.where(rng.random(len(S)) < Q_RR, S, ~S).astype(np.float64)


def _exact_tail(r: int, v: int, q: Fraction) -> float:
    """P[Bin(r, q) >= v] summed exactly in rationals."""
    return float(sum(math.comb(r, j) * q**j * (1 - q) ** (r - j) for j in range(v, r + 1)))


# ----------------------------------------------------------------------------- one-run p-value
@pytest.mark.parametrize(("r", "v", "eps"), [(50, 40, 0.5), (80, 75, 2.0), (30, 16, 0.0), (60, 60, 3.0)])
def test_p_value_is_the_binomial_tail_when_delta_is_zero(r, v, eps):
    q = Fraction(float(expit(eps)))
    assert one_run_p_value(1000, r, v, eps, 0.0) == pytest.approx(_exact_tail(r, v, q), rel=1e-9)
    assert one_run_p_value(1000, r, v, eps, 0.0) == pytest.approx(binom.sf(v - 1, r, float(q)), rel=1e-12)


def test_delta_term_follows_the_theorem_written_out():
    m, r, v, eps, delta = 500, 40, 33, 1.0, 1e-4
    q = Fraction(float(expit(eps)))
    pmf = [math.comb(r, j) * q**j * (1 - q) ** (r - j) for j in range(r + 1)]
    term = max(sum(pmf[v - i : v]) / i for i in range(1, v + 1))
    want = min(1.0, float(sum(pmf[v:]) + 2 * m * Fraction(delta) * term))
    assert one_run_p_value(m, r, v, eps, delta) == pytest.approx(want, rel=1e-9)
    # delta only ever makes the claim harder to reject, so the bound can only go down
    assert one_run_epsilon(m, r, v, delta=delta) <= one_run_epsilon(m, r, v, delta=0.0)


@pytest.mark.parametrize(
    ("m", "r", "v", "want"),
    [(1000, 100, 90, 1.63), (1000, 100, 75, 0.70), (10_000, 1000, 900, 2.02), (10_000, 500, 400, 1.20)],
)
def test_one_run_bound_reproduces_the_spec_examples(m, r, v, want):
    for delta in (0.0, 1e-5):
        assert one_run_epsilon(m, r, v, delta=delta) == pytest.approx(want, abs=0.01)


@pytest.mark.parametrize(("r", "want"), [(100, 3.49), (1000, 5.81)])
def test_one_run_ceiling_is_the_closed_form(r, want):
    # all r guesses right, delta = 0: p(eps) = q^r, so the bound is logit(beta^(1/r))
    got = one_run_epsilon(10 * r, r, r, delta=0.0, confidence=0.95)
    assert got == pytest.approx(float(logit(0.05 ** (1 / r))), abs=1e-6)
    assert got == pytest.approx(want, abs=0.01)


def test_one_run_bound_is_zero_when_nothing_is_shown():
    assert one_run_epsilon(100, 50, 25, delta=0.0) == 0.0  # half right: chance
    assert one_run_epsilon(100, 0, 0, delta=0.0) == 0.0
    b = audit_epsilon(np.zeros(200), np.arange(200) % 2 == 0, delta=0.0, k_plus=50)
    assert b.value == 0.0


# ------------------------------------------------------------------------------ Clopper-Pearson
@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (17, 250), (999, 1000), (500, 1000), (40, 40)])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_clopper_pearson_upper_matches_scipy_binomtest(k, n, alpha):
    want = binomtest(k, n).proportion_ci(1 - alpha, method="exact").high
    assert float(clopper_pearson_upper(k, n, alpha / 2)) == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("k", "want"), [(100, 3.28), (250, 4.21), (500, 4.91), (1000, 5.60)])
def test_multi_run_ceiling_table(k, want):
    assert multi_run_ceiling(k, k) == pytest.approx(want, abs=0.01)


# ---------------------------------------------------------------------- randomised response, eps=2
def test_randomised_response_one_run_bound_is_valid_and_tight():
    m, seeds = 10_000, 200
    rng = np.random.default_rng(2023)
    vals = []
    for s in range(seeds):
        S = rng.random(m) < 0.5
        # every canary guessed: IN for the top half, OUT for the bottom half (fixed in advance)
        b = audit_epsilon(_randomised_response(S, rng), S, delta=0.0, k_plus=m // 2, k_minus=m // 2, seed=s)
        assert b.r == m
        vals.append(b.value)
    vals = np.array(vals)
    assert 1.85 < vals.mean() <= 2.0  # ~1.9: q = 0.881 measured with sd 0.003
    # at most 5% of runs may claim more than the truth; the allowance is 3 sd of that count
    assert (vals > EPS_RR).mean() <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / seeds)
    # and exactly: the worst case v ~ Bin(m, q) exceeds 2 with probability <= 5%
    lo, hi = 0, m  # smallest v whose bound exceeds 2
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if one_run_epsilon(m, m, mid, delta=0.0) <= EPS_RR else (lo, mid)
    assert binom.sf(lo - 1, m, Q_RR) <= 0.05


@pytest.mark.parametrize("strategy", ["split", "bonferroni"])
def test_randomised_response_multi_run_bound_is_valid(strategy):
    K, seeds = 1000, 200  # K trials with the canary IN and K with it OUT
    rng = np.random.default_rng(2020)
    S = np.r_[np.ones(K, bool), np.zeros(K, bool)]
    vals = np.array([
        audit_epsilon(_randomised_response(S, rng), S, method="clopper_pearson", delta=0.0,
                      threshold_strategy=strategy, seed=s).value
        for s in range(seeds)
    ])  # fmt: skip
    assert (vals > EPS_RR).mean() <= 0.05
    # Clopper-Pearson at 1,000 trials a side costs ~0.2-0.35 of the 2 (split: 500 a side bound)
    assert 1.55 < vals.mean() < EPS_RR


@pytest.mark.parametrize("method", ["one_run", "clopper_pearson"])
@pytest.mark.parametrize("strategy", ["split", "bonferroni"])
def test_no_signal_gives_no_bound(method, strategy):
    # epsilon = 0 (scores independent of inclusion): any positive bound is a false claim
    rng = np.random.default_rng(7)
    positive, seeds = 0, 60
    for s in range(seeds):
        S = rng.random(300) < 0.5
        positive += audit_epsilon(rng.normal(size=300), S, method=method, delta=1e-5,
                                  threshold_strategy=strategy, seed=s).value > 0  # fmt: skip
    assert positive <= 0.05 * seeds + 3 * math.sqrt(seeds * 0.05 * 0.95)


# ---------------------------------------------------------------------------- ceilings, splits
@pytest.mark.parametrize(
    "kw",
    [
        {"method": "one_run", "k_plus": 200},
        {"method": "one_run", "k_plus": 100, "k_minus": 100},
        {"method": "one_run", "threshold_strategy": "bonferroni"},
        {"method": "one_run", "threshold_strategy": "split"},
        {"method": "clopper_pearson", "threshold_strategy": "bonferroni"},
        {"method": "clopper_pearson", "threshold_strategy": "split"},
    ],
)
def test_perfectly_separated_scores_give_the_ceiling(kw):
    rng = np.random.default_rng(3)
    S = rng.random(1000) < 0.5
    scores = np.where(S, rng.uniform(5, 6, 1000), rng.uniform(0, 1, 1000))
    b = audit_epsilon(scores, S, delta=1e-5, seed=1, **kw)
    assert b.value > 2.0
    if kw.get("threshold_strategy") == "split":
        # the ceiling is the best the bounding half allows (every IN canary guessed / the better
        # direction); the choosing half's choice gets close to it, never above
        assert 0.9 * b.ceiling <= b.value <= b.ceiling
    else:
        assert b.value == pytest.approx(b.ceiling, abs=1e-9)
    # and a weaker attack stays below it
    noisy = audit_epsilon(S + rng.normal(0, 1.0, 1000), S, delta=1e-5, seed=1, **kw)
    assert noisy.value < noisy.ceiling


@pytest.mark.parametrize("method", ["one_run", "clopper_pearson"])
@pytest.mark.parametrize("strategy", ["split", "bonferroni"])
def test_value_never_exceeds_the_ceiling(method, strategy):
    rng = np.random.default_rng(8)
    for s in range(20):
        n = int(rng.integers(20, 400))
        S = rng.random(n) < rng.uniform(0.2, 0.8)
        sc = S * rng.uniform(0, 4) + rng.normal(size=n)
        b = audit_epsilon(sc, S, method=method, delta=float(rng.choice([0.0, 1e-5, 1e-3])),
                          threshold_strategy=strategy, seed=s)  # fmt: skip
        assert 0.0 <= b.value <= b.ceiling + 1e-12


def test_one_run_ceiling_with_fixed_guesses_is_logit_of_beta_root():
    S = np.arange(400) < 200
    b = audit_epsilon(S.astype(float), S, delta=0.0, k_plus=100)
    assert b.v == b.r == 100
    assert b.value == pytest.approx(float(logit(0.05 ** (1 / 100))), abs=1e-6)


def test_split_strategy_never_reuses_the_bounding_half():
    rng = np.random.default_rng(11)
    n = 2000
    S = rng.random(n) < 0.5
    choose, bound = split_halves(n, 5)
    assert len(np.intersect1d(choose, bound)) == 0 and len(choose) + len(bound) == n
    # planted: perfect separation on the choosing half only, noise on the bounding half
    scores = rng.normal(size=n)
    scores[choose] = S[choose] * 10.0
    for method in ("one_run", "clopper_pearson"):
        split = audit_epsilon(scores, S, method=method, delta=0.0, threshold_strategy="split", seed=5)
        assert split.value < 0.5, method  # what the choosing half shows is not counted
        assert split.r <= len(bound) and split.m <= n
    # the threshold depends on the choosing half only: scrambling the bounding half keeps it
    a = audit_epsilon(scores, S, method="clopper_pearson", delta=0.0, seed=5)
    other = scores.copy()
    other[bound] = rng.normal(size=len(bound)) * 100
    b = audit_epsilon(other, S, method="clopper_pearson", delta=0.0, seed=5)
    assert a.threshold == b.threshold and a.direction == b.direction
    # ... and the bound is the Clopper-Pearson bound of the bounding half's counts there
    t, sb, ib = a.threshold, scores[bound], S[bound]
    fn, fp = int((sb[ib] < t).sum()), int((sb[~ib] >= t).sum())
    fnr_ub = float(clopper_pearson_upper(fn, int(ib.sum()), 0.025))
    fpr_ub = float(clopper_pearson_upper(fp, int((~ib).sum()), 0.025))
    with np.errstate(divide="ignore"):
        want = max(np.log(1 - fnr_ub) - np.log(fpr_ub), np.log(1 - fpr_ub) - np.log(fnr_ub), 0.0)
    assert a.value == pytest.approx(want, abs=1e-12)
    # one run: the number of guesses comes from the choosing half only
    c = audit_epsilon(scores, S, delta=0.0, seed=5)
    d = audit_epsilon(other, S, delta=0.0, seed=5)
    assert c.k_plus == d.k_plus and c.m == len(bound)


def test_bonferroni_uses_every_row():
    rng = np.random.default_rng(2)
    S = rng.random(600) < 0.5
    b = audit_epsilon(S + rng.normal(0, 0.3, 600), S, method="clopper_pearson", delta=0.0,
                      threshold_strategy="bonferroni")  # fmt: skip
    assert b.r == b.m == 600 and b.v <= 600


# ------------------------------------------------------------------------------------ per group
def test_per_group_bounds_find_the_planted_group():
    rng = np.random.default_rng(4)
    n = 2000
    g = np.where(rng.random(n) < 0.5, "A", "B")
    h = np.where(rng.random(n) < 0.5, "x", "y")
    S = rng.random(n) < 0.5
    scores = np.where(g == "A", S * 10.0, 0.0) + rng.normal(0, 0.1, n)  # group A leaks, B does not
    sens = pd.DataFrame({"g": g, "h": h})
    for method in ("one_run", "clopper_pearson"):
        b = audit_epsilon(scores, S, method=method, delta=1e-5, groups=sens, seed=0)
        assert set(b.by_group) == {"g", "h", "g*h"}
        assert set(b.by_group["g*h"]) == {"A|x", "A|y", "B|x", "B|y"}
        a, bb = b.by_group["g"]["A"], b.by_group["g"]["B"]
        assert 0.9 * a.ceiling <= a.value <= a.ceiling and a.value > 1.5  # split: near its ceiling
        assert bb.value < 0.5 < bb.ceiling
        assert a.m + bb.m <= n
        assert b.by_group["g*h"]["A|x"].value > b.by_group["g*h"]["B|y"].value
        json.dumps(b.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- contract, messages
def test_same_seed_same_numbers_and_json():
    rng = np.random.default_rng(9)
    S = rng.random(500) < 0.5
    sc = S + rng.normal(0, 1, 500)
    a = audit_epsilon(sc, S, delta=1e-5, seed=3)
    assert a == audit_epsilon(sc, S, delta=1e-5, seed=3)
    assert isinstance(a, EpsilonBound)
    d = a.to_dict()
    json.dumps(d, allow_nan=False)
    assert {"value", "ceiling", "method", "confidence", "m", "r", "v", "notes"} <= set(d)


@pytest.mark.parametrize(
    ("kw", "err", "match"),
    [
        ({"scores": np.zeros(3), "is_in": np.zeros(4, bool)}, DataValidationError, "one length"),
        ({"scores": [0.0, np.nan], "is_in": [True, False]}, DataValidationError, "finite"),
        ({"scores": [0.0, 1.0], "is_in": [2, 0]}, DataValidationError, "booleans"),
        ({"method": "lira"}, ParameterError, "'method'.*Got 'lira'"),
        ({"threshold_strategy": "best"}, ParameterError, "'threshold_strategy'"),
        ({"confidence": 1.5}, ParameterError, r"'confidence'.*\(0, 1\).*Got 1.5"),
        ({"delta": -1e-5}, ParameterError, "'delta'"),
        ({"k_plus": 11}, ParameterError, "k_plus \\+ k_minus <= 10"),
        ({"k_plus": 0}, ParameterError, "at least one guess"),
        ({"scores": [], "is_in": []}, DataValidationError, "at least one"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kw, err, match):
    args = {"scores": np.arange(10.0), "is_in": np.arange(10) % 2 == 0, "delta": 1e-5, **kw}
    with pytest.raises(err, match=match):
        audit_epsilon(args.pop("scores"), args.pop("is_in"), **args)
