"""Per group and intersection: how far records sit from the decision boundary, and who is brittle.

Groups are fairleak's views (:func:`~fairleak.data.group_views`: each protected attribute and
their intersections, the keys of the fairness report). Only correctly classified records have a
meaningful distance (ALGORITHMS-2.md section 5); base rates differ by group, so every figure is
also given per true label. Intervals are percentile bootstraps, each group resampled on its own.

- per group: median, mean and quantiles of the distance, the share flipped within each budget
  (``P(r <= eps | correct)``), robust accuracy ``RA(eps) = P(correct and r > eps)``; per true
  label the median and the share flipped (for a favourable positive label, label 1's share is
  the share of adverse flips, positive to negative);
- disparity per view: the most brittle group (smallest median) against the least brittle one:
  ratio (``worst / best``, 1 = equal) and difference of medians, with bootstrap intervals of the
  figure for those two groups, and the robust-accuracy gap (max - min) at each budget; groups
  below ``min_group_size`` correct records take no part;
- correlation of group size with the group's median (Spearman; the seeds' question whether
  scarcity explains brittleness);
- :func:`membership_link`: the boundary distance as a label-only membership score
  (Choquette-Choo et al. 2021: members sit farther from the boundary), AUC overall and per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from fairleak.data import group_views, normalize_sensitive
from fairleak.errors import DataValidationError

__all__ = ["group_robustness", "membership_link", "robustness_summary"]


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _quantile(d: np.ndarray, q: Any, axis: int | None = None) -> Any:
    """Quantiles of distances that may be inf (never flipped): an interpolation between two
    infs is inf, not NaN."""
    with np.errstate(invalid="ignore"):
        v = np.quantile(d, q, axis=axis)
    return np.where(np.isnan(v), np.inf, v)


def _ci(samples: np.ndarray, confidence: float) -> list[float | None]:
    a = (1 - confidence) / 2
    if not len(samples):
        return [None, None]
    lo, hi = _quantile(samples, [a, 1 - a])
    return [_finite(lo), _finite(hi)]


def robustness_summary(
    d: np.ndarray, *, n_total: int, budgets: Sequence[float], quantiles: Sequence[float],
) -> dict[str, Any]:  # fmt: skip
    """Figures of one set of correctly classified records' distances ``d`` (``n_total``: all
    records of the set, correct or not, for robust accuracy)."""
    out: dict[str, Any] = {"n": int(n_total), "n_correct": len(d)}
    if not len(d):
        out.update(median=None, mean=None, quantiles={}, flipped_within={}, robust_accuracy={})
        return out
    fin = d[np.isfinite(d)]
    out["median"] = _finite(_quantile(d, 0.5))
    out["mean"] = float(fin.mean()) if len(fin) == len(d) else None
    out["quantiles"] = {f"{q:g}": _finite(_quantile(d, q)) for q in quantiles}
    out["flipped_within"] = {f"{e:g}": float((d <= e).mean()) for e in budgets}
    out["robust_accuracy"] = {f"{e:g}": float((d > e).sum() / max(n_total, 1)) for e in budgets}
    out["never_flipped"] = int((~np.isfinite(d)).sum())
    return out


def _boot_medians(d: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    if not len(d) or n_bootstrap <= 0:
        return np.zeros(0)
    idx = rng.integers(0, len(d), size=(n_bootstrap, len(d)))
    return _quantile(d[idx], 0.5, axis=1)


def _boot_shares(d: np.ndarray, budgets: Sequence[float], n_bootstrap: int,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:  # fmt: skip
    if not len(d) or n_bootstrap <= 0:
        return {}
    # a resample's share flipped within eps is a binomial draw of the observed share
    return {f"{e:g}": rng.binomial(len(d), float((d <= e).mean()), n_bootstrap) / len(d) for e in budgets}


def _disparity(
    meds: dict[str, float], boots: dict[str, np.ndarray], confidence: float
) -> dict[str, Any] | None:
    ok = {g: m for g, m in meds.items() if m is not None and np.isfinite(m)}
    if len(ok) < 2:
        return None
    worst = min(ok, key=lambda g: ok[g])
    best = max(ok, key=lambda g: ok[g])
    ratio = ok[worst] / ok[best] if ok[best] > 0 else None
    out: dict[str, Any] = {
        "worst": worst, "best": best, "worst_median": ok[worst], "best_median": ok[best],
        "ratio": ratio, "difference": ok[best] - ok[worst], "n_groups": len(ok),
    }  # fmt: skip
    bw, bb = boots.get(worst), boots.get(best)
    if bw is not None and bb is not None and len(bw) and len(bb):
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(bb > 0, bw / bb, np.nan)
            diff = bb - bw
        out["ratio_ci"] = _ci(r[np.isfinite(r)], confidence)
        out["difference_ci"] = _ci(diff[np.isfinite(diff)], confidence)
    else:
        out["ratio_ci"] = out["difference_ci"] = [None, None]
    return out


def group_robustness(
    distance: Any,
    *,
    correct: Any,
    y_true: Any,
    sensitive: Any,
    budgets: Sequence[float] = (0.1, 0.25, 0.5, 1.0),
    quantiles: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9),
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    min_group_size: int = 30,
    intersections: bool | int = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-group distance figures, disparity and size correlation (JSON-able).

    ``distance``: minimal flipping distance per record [N] (inf: never flipped); ``correct``:
    whether the model classified the record right; ``y_true``: 0/1 labels; ``sensitive``: the
    records' protected attributes (anything :func:`~fairleak.data.normalize_sensitive` takes).
    """
    d = np.asarray(distance, dtype=np.float64).reshape(-1)
    c = np.asarray(correct, dtype=bool).reshape(-1)
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    if not (len(d) == len(c) == len(y)):
        raise DataValidationError(
            f"distance ({len(d)}), correct ({len(c)}) and y_true ({len(y)}) differ in length."
        )
    if np.isnan(d).any() or (d < 0).any():
        raise DataValidationError("distances must be >= 0 (inf for records never flipped); got NaN or negatives.")
    sf = normalize_sensitive(sensitive, n_rows=len(d))
    rng = np.random.default_rng(seed)
    kw = {"budgets": budgets, "quantiles": quantiles}
    out: dict[str, Any] = {
        "budgets": [float(e) for e in budgets], "min_group_size": int(min_group_size),
        "confidence": float(confidence), "overall": robustness_summary(d[c], n_total=len(d), **kw),
        "groups": {}, "disparity": {}, "disparity_by_label": {}, "size_correlation": {},
    }  # fmt: skip
    labels = [str(v) for v in sorted(set(y.tolist()))]
    for view, glabels in group_views(sf, intersections=intersections).items():
        gl = np.asarray(glabels, dtype=str)
        groups: dict[str, Any] = {}
        meds: dict[str, float] = {}
        boots: dict[str, np.ndarray] = {}
        meds_l: dict[str, dict[str, float]] = {lab: {} for lab in labels}
        boots_l: dict[str, dict[str, np.ndarray]] = {lab: {} for lab in labels}
        for g in sorted(set(gl.tolist())):
            sel = gl == g
            dg = d[sel & c]
            s = robustness_summary(dg, n_total=int(sel.sum()), **kw)
            s["too_small"] = len(dg) < min_group_size
            if not s["too_small"]:
                b = _boot_medians(dg, n_bootstrap, rng)
                s["median_ci"] = _ci(b, confidence)
                s["flipped_within_ci"] = {k: _ci(v, confidence) for k, v in
                                          _boot_shares(dg, budgets, n_bootstrap, rng).items()}  # fmt: skip
                meds[g], boots[g] = s["median"], b
            s["by_label"] = {}
            for lab in labels:
                dl = d[sel & c & (y == int(lab))]
                s["by_label"][lab] = {
                    "n_correct": len(dl), "median": _finite(_quantile(dl, 0.5)) if len(dl) else None,
                    "flipped_within": {f"{e:g}": float((dl <= e).mean()) if len(dl) else None for e in budgets},
                }  # fmt: skip
                if len(dl) >= min_group_size:
                    meds_l[lab][g] = s["by_label"][lab]["median"]
                    boots_l[lab][g] = _boot_medians(dl, n_bootstrap, rng)
            groups[g] = s
        out["groups"][view] = groups
        out["disparity"][view] = _disparity(meds, boots, confidence)
        if out["disparity"][view] is not None:  # robust accuracy gap across the eligible groups
            ra = [groups[g]["robust_accuracy"] for g in meds]
            out["disparity"][view]["robust_accuracy_gap"] = {
                k: float(max(r[k] for r in ra) - min(r[k] for r in ra)) for k in ra[0]
            }
        out["disparity_by_label"][view] = {lab: _disparity(meds_l[lab], boots_l[lab], confidence)
                                           for lab in labels}  # fmt: skip
        fin = [(groups[g]["n"], m) for g, m in meds.items() if m is not None and np.isfinite(m)]
        if len(fin) >= 3:
            rho, p = stats.spearmanr([a for a, _ in fin], [b for _, b in fin])
            out["size_correlation"][view] = {"spearman": _finite(rho), "p_value": _finite(p), "n_groups": len(fin)}
        else:
            out["size_correlation"][view] = {"spearman": None, "p_value": None, "n_groups": len(fin)}
    return out


def membership_link(
    distance: Any, *, correct: Any, is_member: Any, sensitive: Any = None, n_bootstrap: int = 200,
    min_group_size: int = 20, seed: int = 0,
) -> Any:  # fmt: skip
    """The boundary distance as a label-only membership score: ``+r`` for a correctly
    classified record, ``-r`` for a misclassified one (Choquette-Choo et al. 2021); returns
    :class:`~fairleak.attacks.AttackMetrics` (AUC > 0.5: members sit farther from the
    boundary), per group when ``sensitive`` is given."""
    from fairleak.attacks import attack_metrics

    d = np.asarray(distance, dtype=np.float64).reshape(-1)
    fin = d[np.isfinite(d)]
    cap = 2 * float(fin.max()) + 1 if len(fin) else 1.0  # never flipped: farther than any flipped
    d = np.where(np.isfinite(d), d, cap)
    score = np.where(np.asarray(correct, dtype=bool), d, -d)
    return attack_metrics(score, is_member, groups=sensitive, min_group_size=min_group_size,
                          n_bootstrap=n_bootstrap, random_state=seed)  # fmt: skip
