"""Empirical lower bounds on epsilon from canary scores: DP auditing as pure statistics.

A training algorithm that is (epsilon, delta)-DP limits how well *any* test can tell whether a
record (a canary) was in its training set; a test that does better than the limit, with
confidence ``1 - beta``, proves epsilon is at least the bound. Two designs:

- **multi-run** (Jagielski, Ullman, Oprea, NeurIPS 2020; Nasr et al., IEEE S&P 2021): many
  independent trials, each a model trained with or without the canary and its score. From
  ``TPR <= e^eps FPR + delta`` (and the reverse, ``TNR <= e^eps FNR + delta``),
  ``eps >= ln((TPR_lb - delta) / FPR_ub)`` with one-sided Clopper-Pearson bounds at ``alpha / 2``
  each. The threshold is chosen without peeking: on one half of the trials (``"split"``, bounded
  on the other half) or over every cut of the scores with a Bonferroni correction.
- **one-run** (Steinke, Nasr, Jagielski, "Privacy Auditing with One (1) Training Run", NeurIPS
  2023): m canaries each included with probability 1/2 in one training run; guess IN for the
  ``k_plus`` highest scores and OUT for the ``k_minus`` lowest; ``r`` guesses, ``v`` correct. The
  p-value of "the algorithm is (eps, delta)-DP" is (their Theorem 5.2)
  ``P[Bin(r, q) >= v] + 2 m delta max_{1<=i<=v} P[v - i <= Bin(r, q) < v] / i``,
  ``q = e^eps / (1 + e^eps)``; the bound is the largest eps with p-value below ``beta``.
  Runs with **disjoint** canary sets pool into one test (each canary is in at most one run).

Read, not copied: ``google-deepmind/jax_privacy`` ``jax_privacy/auditing.py``. Written here
because no maintained Python package offers these bounds without JAX (scipy does the
distributions). Specification: ALGORITHMS-2.md section 9.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import beta as beta_dist
from scipy.stats import binom

from fairleak.data.groups import group_views, normalize_sensitive
from fairleak.errors import DataValidationError, ParameterError

__all__ = [
    "EpsilonBound",
    "audit_epsilon",
    "clopper_pearson_upper",
    "guess_grid",
    "multi_run_ceiling",
    "one_run_epsilon",
    "one_run_p_value",
    "split_halves",
]

Method = Literal["one_run", "clopper_pearson"]
Strategy = Literal["split", "bonferroni"]
_EPS_MAX = 64.0  # no count of canaries a computer holds proves more (logit(0.05 ** (1 / 1e9)) ~ 24)


@dataclass
class EpsilonBound:
    """An empirical lower bound on epsilon.

    ``value``: the bound (0: the test proves nothing); ``ceiling``: the most these counts could
    show, every guess right (one run: the same numbers of guesses, or under ``"split"`` every
    IN canary of the bounding half guessed; multi-run: no false positive or negative), at the
    same confidence and correction; ``value <= ceiling`` always;
    ``confidence``: 1 - beta. One-run: ``m`` canaries, ``r`` guesses, ``v`` right. Multi-run:
    ``m`` trials, ``r`` of them behind the bound (the bounding half under ``"split"``), ``v``
    classified right at the chosen ``threshold`` / ``direction``. ``by_group``: one bound per
    group and intersection (``{"sex": {"Female": EpsilonBound}}``), each at the same confidence.
    """

    value: float
    ceiling: float
    method: str
    confidence: float
    delta: float
    m: int
    r: int
    v: int
    n_in: int
    n_out: int
    threshold_strategy: str | None = None
    k_plus: int | None = None
    k_minus: int | None = None
    threshold: float | None = None
    direction: str | None = None
    tpr_lower: float | None = None
    fpr_upper: float | None = None
    notes: list[str] = field(default_factory=list)
    by_group: dict[str, dict[str, EpsilonBound]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (no NaN or infinity: an infinite threshold is None)."""

        def num(x: float | None) -> float | None:
            return None if x is None or not np.isfinite(x) else float(x)

        out: dict[str, Any] = {
            "value": float(self.value), "ceiling": float(self.ceiling), "method": self.method,
            "confidence": float(self.confidence), "delta": float(self.delta), "m": int(self.m),
            "r": int(self.r), "v": int(self.v), "n_in": int(self.n_in), "n_out": int(self.n_out),
            "threshold_strategy": self.threshold_strategy, "k_plus": self.k_plus,
            "k_minus": self.k_minus, "threshold": num(self.threshold), "direction": self.direction,
            "tpr_lower": num(self.tpr_lower), "fpr_upper": num(self.fpr_upper),
            "notes": list(self.notes),
        }  # fmt: skip
        if self.by_group:
            out["by_group"] = {
                view: {g: b.to_dict() for g, b in groups.items()} for view, groups in self.by_group.items()
            }
        return out


# ----------------------------------------------------------------------------------- statistics
def clopper_pearson_upper(k: int | np.ndarray, n: int, alpha: float) -> np.ndarray:
    """One-sided Clopper-Pearson upper bound on a binomial proportion at level ``alpha``:
    ``Beta.ppf(1 - alpha, k + 1, n - k)``, 1 when ``k == n`` (also for ``n == 0``)."""
    k = np.asarray(k)
    with np.errstate(invalid="ignore"):
        ub = beta_dist.ppf(1.0 - alpha, k + 1, np.maximum(n - k, 1))
    return np.where(k >= n, 1.0, ub)


def multi_run_ceiling(n_in: int, n_out: int, *, confidence: float = 0.95, delta: float = 0.0) -> float:
    """The multi-run bound of a perfect test at one fixed threshold (no false positive or
    negative), the better direction: ``ln((1 - CP_upper(0, n_in) - delta) / CP_upper(0, n_out))``
    or its reverse, at ``alpha / 2`` each (ALGORITHMS-2.md section 9.1: 100 trials a side -> 3.28;
    1,000 -> 5.60)."""
    a = (1.0 - confidence) / 2
    fnr_ub = float(clopper_pearson_upper(0, n_in, a))
    fpr_ub = float(clopper_pearson_upper(0, n_out, a))
    best = 0.0
    for lower, upper in ((1.0 - fnr_ub, fpr_ub), (1.0 - fpr_ub, fnr_ub)):
        if lower > delta:
            best = max(best, float(np.log(lower - delta) - np.log(upper)))
    return best


def one_run_p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """p-value of "(epsilon, delta)-DP" after ``v`` right of ``r`` guesses on ``m`` canaries
    (Steinke, Nasr, Jagielski 2023, Theorem 5.2)."""
    if v <= 0:
        return 1.0
    q = float(expit(epsilon))
    tail = float(binom.sf(v - 1, r, q))  # P[Bin(r, q) >= v]
    if delta == 0:
        return min(tail, 1.0)
    # P[v - i <= Bin < v] for i = 1..v as a cumulative sum of probabilities (no cancellation)
    window = np.cumsum(binom.pmf(np.arange(v - 1, -1, -1), r, q))
    term = float(np.max(window / np.arange(1, v + 1)))
    return min(tail + 2.0 * m * delta * term, 1.0)


def one_run_epsilon(m: int, r: int, v: int, *, delta: float, confidence: float = 0.95) -> float:
    """``sup {eps : p(eps) < beta}`` (0 when even eps = 0 is not rejected): double an upper end
    until the p-value reaches ``beta``, then solve ``p(eps) = beta`` with Brent's method."""
    b = 1.0 - confidence
    if r <= 0 or v <= 0 or one_run_p_value(m, r, v, 0.0, 0.0) >= b:
        return 0.0  # the delta = 0 part alone is a lower bound on the p-value: cheap exit
    if delta > 0 and one_run_p_value(m, r, v, 0.0, delta) >= b:
        return 0.0

    def excess(eps: float) -> float:
        return b - one_run_p_value(m, r, v, eps, delta)

    lo, hi = 0.0, 1.0
    while excess(hi) > 0:
        lo, hi = hi, 2 * hi
        if hi > _EPS_MAX:
            return _EPS_MAX
    return float(brentq(excess, lo, hi, xtol=1e-9))


def guess_grid(n: int) -> np.ndarray:
    """Numbers of IN guesses tried when ``k_plus`` is not given: 1, 2, 3, 5, 7, 10, 15, 20, ...
    up to ``n`` (and ``n`` itself), fixed before any score is seen."""
    base = np.array([1.0, 1.5, 2.0, 3.0, 5.0, 7.0])
    vals = (base[None, :] * 10.0 ** np.arange(0, 10)[:, None]).ravel()
    grid = np.unique(np.r_[np.round(vals[vals <= n]).astype(np.int64), n])
    return grid[grid >= 1]


def split_halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random partition of ``range(n)`` into the half that chooses (the threshold or the
    number of guesses) and the half that bounds; sorted positions."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


def _child(seed: int, *names: str) -> int:
    """An independent stream of ``seed`` named for its use (no ``seed + 1`` offsets)."""
    key = tuple(zlib.crc32(n.encode()) for n in names)
    return int(np.random.SeedSequence(int(seed), spawn_key=key).generate_state(1, np.uint32)[0])


# ------------------------------------------------------------------------------------- one run
def _ranking(scores: np.ndarray, seed: int) -> np.ndarray:
    """Positions by decreasing score, ties in a random order (a guess never depends on S)."""
    tie = np.random.default_rng(seed).random(len(scores))
    return np.lexsort((tie, -scores))


def _one_run_counts(order: np.ndarray, is_in: np.ndarray, k_plus: int, k_minus: int) -> int:
    top = is_in[order[:k_plus]].sum()
    bottom = (~is_in[order[len(order) - k_minus :]]).sum() if k_minus else 0
    return int(top + bottom)


def _one_run_fixed(
    scores: np.ndarray, is_in: np.ndarray, k_plus: int, k_minus: int, delta: float,
    confidence: float, seed: int,
) -> tuple[float, int, int]:  # fmt: skip
    order = _ranking(scores, seed)
    v = _one_run_counts(order, is_in, k_plus, k_minus)
    r = k_plus + k_minus
    return one_run_epsilon(len(scores), r, v, delta=delta, confidence=confidence), r, v


def _one_run_best(
    scores: np.ndarray, is_in: np.ndarray, k_minus: int, delta: float, confidence: float, seed: int
) -> tuple[float, int, int, int]:
    """Best bound over :func:`guess_grid` at the given confidence: (eps, k_plus, r, v); among
    equal bounds (zeros included) the most precise guesses."""
    m = len(scores)
    order = _ranking(scores, seed)
    beta = 1.0 - confidence
    best: tuple[float, float, int, int, int] = (0.0, -1.0, 1, k_minus + 1, 0)
    for k in (int(k) for k in guess_grid(m - k_minus)):
        r = k + k_minus
        v = _one_run_counts(order, is_in, k, k_minus)
        # exact shortcut: p(eps) >= its delta = 0 part, so if that already reaches beta at the
        # best eps so far, these guesses cannot beat it
        if best[0] > 0 and one_run_p_value(m, r, v, best[0], 0.0) >= beta:
            eps = 0.0
        else:
            eps = one_run_epsilon(m, r, v, delta=delta, confidence=confidence)
        if (eps, v / r) > best[:2]:
            best = (eps, v / r, k, r, v)
    return best[0], best[2], best[3], best[4]


def _one_run_ceiling(
    m: int, n_in: int, n_out: int, options: np.ndarray, k_minus: int, delta: float, confidence: float
) -> float:
    """The best bound with ``k_plus`` in ``options``, every guess that can be right right: all
    guesses right up to ``n_in`` IN guesses (the more, the higher), and the first option above
    (one more error-free OUT side may still pay); larger options only add errors."""
    options = np.asarray(options)
    under, over = options[options <= n_in], options[options > n_in]
    cands = ([int(under.max())] if len(under) else []) + ([int(over.min())] if len(over) else [])
    best = 0.0
    for k in cands:
        r, v = k + k_minus, min(k, n_in) + min(k_minus, n_out)
        best = max(best, one_run_epsilon(m, r, v, delta=delta, confidence=confidence))
    return best


def _one_run(
    scores: np.ndarray, is_in: np.ndarray, *, delta: float, confidence: float, k_plus: int | None,
    k_minus: int, strategy: str, seed: int,
) -> EpsilonBound:  # fmt: skip
    m = len(scores)
    n_in, n_out = int(is_in.sum()), int((~is_in).sum())
    notes: list[str] = []
    common = {"method": "one_run", "confidence": confidence, "delta": delta, "n_in": n_in, "n_out": n_out}
    if k_plus is not None:
        value, r, v = _one_run_fixed(scores, is_in, k_plus, k_minus, delta, confidence, seed)
        ceiling = _one_run_ceiling(m, n_in, n_out, np.array([k_plus]), k_minus, delta, confidence)
        return EpsilonBound(value, ceiling, m=m, r=r, v=v, k_plus=k_plus, k_minus=k_minus,
                            threshold_strategy=None, notes=notes, **common)  # fmt: skip
    if strategy == "bonferroni":
        grid = guess_grid(m - k_minus)
        conf = 1.0 - (1.0 - confidence) / len(grid)
        value, k, r, v = _one_run_best(scores, is_in, k_minus, delta, conf, seed)
        ceiling = _one_run_ceiling(m, n_in, n_out, grid, k_minus, delta, conf)
        notes.append(f"best of {len(grid)} numbers of guesses, each at confidence {conf:.5f} (Bonferroni)")
        return EpsilonBound(value, ceiling, m=m, r=r, v=v, k_plus=k, k_minus=k_minus,
                            threshold_strategy="bonferroni", notes=notes, **common)  # fmt: skip
    choose, bound = split_halves(m, seed)
    if len(choose) == 0 or len(bound) == 0:
        return EpsilonBound(0.0, 0.0, m=m, r=0, v=0, k_plus=0, k_minus=0, threshold_strategy="split",
                            notes=["too few canaries to split"], **common)  # fmt: skip
    km_a = round(k_minus * len(choose) / m)
    _, k_a, _, _ = _one_run_best(
        scores[choose], is_in[choose], km_a, delta, confidence, _child(seed, "choose")
    )
    km_b = round(k_minus * len(bound) / m)
    k_b = int(np.clip(round(k_a * len(bound) / len(choose)), 1, max(len(bound) - km_b, 1)))
    sb, ib = scores[bound], is_in[bound]
    value, r, v = _one_run_fixed(sb, ib, k_b, km_b, delta, confidence, _child(seed, "bound"))
    n_in_b, n_out_b = int(ib.sum()), int((~ib).sum())
    r_max = n_in_b + min(km_b, n_out_b)
    ceiling = one_run_epsilon(len(bound), r_max, r_max, delta=delta, confidence=confidence)
    notes.append(
        f"number of guesses chosen on {len(choose)} canaries, bound on the other {len(bound)}"
    )
    return EpsilonBound(value, max(ceiling, value), m=len(bound), r=r, v=v, k_plus=k_b, k_minus=km_b,
                        threshold_strategy="split", notes=notes,
                        **{**common, "n_in": n_in_b, "n_out": n_out_b})  # fmt: skip


# ------------------------------------------------------------------------------------ multi-run
def _cut_counts(scores: np.ndarray, is_in: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cut of the scores (guess IN when score >= t) with its false negatives and false
    positives; t is the midpoint between neighbouring distinct scores (-inf: all IN, +inf: none),
    so a threshold chosen on some trials sits in the middle of its gap for the others."""
    u = np.unique(scores)
    thresholds = np.r_[-np.inf, (u[:-1] + u[1:]) / 2, np.inf]
    fn = np.searchsorted(np.sort(scores[is_in]), thresholds, side="left")
    fp = (~is_in).sum() - np.searchsorted(np.sort(scores[~is_in]), thresholds, side="left")
    return thresholds, fn, fp


def _cp_eps(
    fn: np.ndarray, fp: np.ndarray, n_in: int, n_out: int, alpha: float, delta: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bounds at every threshold, both directions: eps [T, 2] (0: TPR/FPR, 1: TNR/FNR) and the
    Clopper-Pearson ends (FNR_ub, FPR_ub), each at ``alpha / 2``."""
    fnr_ub = clopper_pearson_upper(fn, n_in, alpha / 2)
    fpr_ub = clopper_pearson_upper(fp, n_out, alpha / 2)

    def side(lower_rate: np.ndarray, upper_rate: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.log(lower_rate - delta) - np.log(upper_rate)
        return np.where(lower_rate > delta, e, 0.0)

    eps = np.stack([side(1 - fnr_ub, fpr_ub), side(1 - fpr_ub, fnr_ub)], 1)
    return np.maximum(eps, 0.0), fnr_ub, fpr_ub, eps


_DIRECTIONS = ("tpr/fpr", "tnr/fnr")


def _multi_run(
    scores: np.ndarray, is_in: np.ndarray, *, delta: float, confidence: float, strategy: str,
    seed: int,
) -> EpsilonBound:  # fmt: skip
    alpha = 1.0 - confidence
    n = len(scores)
    notes: list[str] = []
    if strategy == "bonferroni":
        n_in, n_out = int(is_in.sum()), int((~is_in).sum())
        # Union bound over every cut: a Clopper-Pearson end fails at a cut only through the order
        # statistic next to it, so n_in + 1 (false negatives) and n_out + 1 (false positives)
        # events at alpha / (2 T) each stay below alpha with T = ceil((n_in + n_out) / 2) + 1.
        n_tests = (n_in + n_out + 1) // 2 + 1
        a = alpha / n_tests
        thr, fn, fp = _cut_counts(scores, is_in)
        eps, fnr_ub, fpr_ub, _ = _cp_eps(fn, fp, n_in, n_out, a, delta)
        i, d = np.unravel_index(int(np.argmax(eps)), eps.shape)
        notes.append(f"best of every threshold, each at level {a:.3g} (Bonferroni over {n_tests})")
        r = n
        ceiling = multi_run_ceiling(n_in, n_out, confidence=1.0 - a, delta=delta)
    else:
        choose, bound = split_halves(n, seed)
        sc, ic = scores[choose], is_in[choose]
        if ic.sum() == 0 or (~ic).sum() == 0:
            t_star, d = np.inf, 0
            notes.append("the choosing half lacks IN or OUT trials: no threshold could be chosen")
        else:
            thr_c, fn_c, fp_c = _cut_counts(sc, ic)
            eps_c, *_ = _cp_eps(fn_c, fp_c, int(ic.sum()), int((~ic).sum()), alpha, delta)
            ic_best, d = np.unravel_index(int(np.argmax(eps_c)), eps_c.shape)
            t_star = float(thr_c[ic_best])
        sb, ib = scores[bound], is_in[bound]
        n_in, n_out = int(ib.sum()), int((~ib).sum())
        thr = np.array([t_star])
        fn = np.array([int((sb[ib] < t_star).sum())])
        fp = np.array([int((sb[~ib] >= t_star).sum())])
        eps, fnr_ub, fpr_ub, _ = _cp_eps(fn, fp, n_in, n_out, alpha, delta)
        i = 0
        notes.append(f"threshold chosen on {len(choose)} trials, bound on the other {len(bound)}")
        r = len(bound)
        ceiling = multi_run_ceiling(n_in, n_out, confidence=confidence, delta=delta)
    value = float(eps[i, d])
    correct = int((n_in - fn[i]) + (n_out - fp[i]))
    lower, upper = (1 - fnr_ub[i], fpr_ub[i]) if d == 0 else (1 - fpr_ub[i], fnr_ub[i])
    return EpsilonBound(
        value, ceiling, method="clopper_pearson", confidence=confidence, delta=delta, m=n,
        r=r, v=correct, n_in=n_in, n_out=n_out, threshold_strategy=strategy,
        threshold=float(thr[i]), direction=_DIRECTIONS[d], tpr_lower=float(lower),
        fpr_upper=float(upper), notes=notes,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------- API
def _check(
    scores: Any, is_in: Any, method: str, delta: float, confidence: float, k_plus: int | None,
    k_minus: int, strategy: str,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    s = np.asarray(scores, dtype=np.float64)
    b = np.asarray(is_in)
    if s.ndim != 1 or b.shape != s.shape:
        raise DataValidationError(
            f"scores and is_in must be 1-D arrays of one length; got shapes {s.shape} and {b.shape}."
        )
    if not np.isfinite(s).all():
        raise DataValidationError(
            f"scores must be finite; got {int((~np.isfinite(s)).sum())} NaN or infinite value(s)."
        )
    if b.dtype != bool:
        if not np.isin(b, (0, 1)).all():
            raise DataValidationError("is_in must be booleans (or 0/1): True where the canary was IN.")
        b = b.astype(bool)
    if method not in ("one_run", "clopper_pearson"):
        raise ParameterError(
            f"The 'method' parameter of audit_epsilon must be 'one_run' or 'clopper_pearson'. Got {method!r} instead."
        )
    if strategy not in ("split", "bonferroni"):
        raise ParameterError(
            "The 'threshold_strategy' parameter of audit_epsilon must be 'split' or 'bonferroni'. "
            f"Got {strategy!r} instead."
        )
    if not (0.0 < confidence < 1.0):
        raise ParameterError(
            f"The 'confidence' parameter of audit_epsilon must be a float in the range (0, 1). Got {confidence!r} instead."
        )
    if not (0.0 <= delta < 1.0) or not np.isfinite(delta):
        raise ParameterError(
            f"The 'delta' parameter of audit_epsilon must be a float in the range [0, 1). Got {delta!r} instead."
        )
    if k_minus < 0 or (k_plus is not None and (k_plus < 0 or k_plus + k_minus > len(s))):
        raise ParameterError(
            "The 'k_plus' and 'k_minus' parameters of audit_epsilon must be non-negative with "
            f"k_plus + k_minus <= {len(s)} (the number of canaries). Got k_plus={k_plus!r}, "
            f"k_minus={k_minus!r} instead."
        )
    if k_plus is not None and k_plus + k_minus == 0:
        raise ParameterError("audit_epsilon needs at least one guess: k_plus + k_minus must be >= 1. Got 0.")
    return s, b




def audit_epsilon(
    scores: Any,
    is_in: Any,
    *,
    method: Method = "one_run",
    delta: float,
    confidence: float = 0.95,
    k_plus: int | None = None,
    k_minus: int = 0,
    threshold_strategy: Strategy = "split",
    seed: int = 0,
    groups: pd.DataFrame | Any | None = None,
) -> EpsilonBound:
    """Empirical lower bound on epsilon at ``delta`` from canary scores (higher = "IN").

    ``method="one_run"`` (Steinke, Nasr, Jagielski 2023): one score per canary, ``is_in`` its
    inclusion; guess IN for the ``k_plus`` highest and OUT for the ``k_minus`` lowest scores.
    ``k_plus=None`` tries :func:`guess_grid`: ``threshold_strategy="bonferroni"`` keeps the best
    at ``beta / |grid|``, ``"split"`` chooses the share of guesses on a random half of the
    canaries and bounds on the other half. Canaries pooled from several runs must come from
    disjoint sets (a canary reused across runs would compose to a multiple of epsilon).

    ``method="clopper_pearson"`` (Jagielski et al. 2020, Nasr et al. 2021): one score per
    *independent* trial (a model trained with the canary, ``is_in`` True, or without it), both
    directions (TPR/FPR and TNR/FNR); the threshold comes from a random half of the trials
    (``"split"``, bounded on the other half) or from every cut with a Bonferroni correction.

    ``groups``: protected attributes per canary / trial (a DataFrame, one column each); adds one
    bound per group and intersection (:func:`fairleak.data.group_views`) in ``by_group``, each
    at ``confidence`` on its own (not simultaneously). ``seed`` breaks ties and draws the split.
    """
    s, b = _check(scores, is_in, method, delta, confidence, k_plus, k_minus, threshold_strategy)
    n = len(s)

    def run(sc: np.ndarray, ins: np.ndarray, sd: int) -> EpsilonBound:
        if method == "one_run":
            kp = k_plus if k_plus is None else min(k_plus, len(sc) - min(k_minus, len(sc)))
            km = min(k_minus, len(sc))
            if kp is not None and kp + km == 0:
                kp = 1
            kw = {"delta": delta, "confidence": confidence, "k_plus": kp, "k_minus": km,
                  "strategy": threshold_strategy, "seed": sd}  # fmt: skip
            res = _one_run(sc, ins, **kw)
        else:
            kw = {"delta": delta, "confidence": confidence, "strategy": threshold_strategy, "seed": sd}
            res = _multi_run(sc, ins, **kw)
            if ins.all() or not ins.any():
                res.notes.append("every trial is on one side (IN or OUT): nothing can be shown")
        return res

    if n == 0:
        raise DataValidationError("audit_epsilon needs at least one canary score; got none.")
    result = run(s, b, seed)
    if groups is not None:
        sens = normalize_sensitive(groups, n)
        for view, labels in group_views(sens).items():
            lab = np.asarray(labels, dtype=str)
            result.by_group[view] = {}
            for g in sorted(set(lab.tolist())):
                mask = lab == g
                result.by_group[view][g] = run(s[mask], b[mask], _child(seed, view, g))
    return result
