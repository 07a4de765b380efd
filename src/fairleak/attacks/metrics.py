"""How well an attack separates members from non-members, overall and per group.

For every figure the number of members and non-members behind it is kept; TPR at 0.1% FPR is
flagged as not meaningful below ~1,000 non-members (ALGORITHMS.md section 2). TPR at a fixed FPR
is read conservatively from the empirical ROC: the best TPR among thresholds whose FPR does not
exceed the target (no interpolation upwards).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fairleak.data.groups import group_views, normalize_sensitive, sorted_groups
from fairleak.errors import DataValidationError

__all__ = ["AttackMetrics", "attack_metrics", "resampled_attack_metrics", "roc_grid", "tpr_at_fpr"]

#: FPR grid on which ROC curves are stored (log-spaced, for log-log plots).
FPR_GRID = np.unique(np.concatenate([np.logspace(-5, 0, 101), [0.001, 0.01, 0.1]]))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """Largest TPR among ROC points with FPR <= target (conservative)."""
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def roc_grid(fpr: np.ndarray, tpr: np.ndarray) -> np.ndarray:
    """TPR on :data:`FPR_GRID` (conservative step function; ``fpr`` ascending)."""
    idx = np.searchsorted(fpr, FPR_GRID + 1e-12, side="right") - 1
    best = np.maximum.accumulate(tpr)
    return np.where(idx >= 0, best[np.clip(idx, 0, None)], 0.0)


class _Roc:
    """ROC of one score vector, for the data and for bootstrap resamples, from one sort.

    Everything is kept as integer counts: a bootstrap resample is a vector of how often each
    row is drawn (members and non-members resampled separately, so their totals stay fixed),
    laid out in the sort order, so every resample reuses the one sort and costs O(n) in
    integer cumulative sums instead of a new sort and float weights.
    """

    def __init__(self, scores: np.ndarray, is_member: np.ndarray) -> None:
        order = np.argsort(-scores, kind="stable")
        self.order = order
        ss = scores[order]
        self.m = is_member[order]
        self.n_in, self.n_out = int(self.m.sum()), int((~self.m).sum())
        self.last = np.r_[np.flatnonzero(np.diff(ss) != 0), len(ss) - 1]  # end of each tie block

    def bootstrap_counts(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Member and non-member draw counts [size, n] (in sort order) of ``size`` resamples.

        Each row is a multinomial(n_in, uniform) over the members (and likewise over the
        non-members), drawn as a bincount of uniform indices.
        """
        n = len(self.m)
        offsets = (np.arange(size) * n)[:, None]

        def draw(positions: np.ndarray) -> np.ndarray:
            picks = positions[rng.integers(0, len(positions), size=(size, len(positions)))]
            return np.bincount((picks + offsets).ravel(), minlength=size * n).reshape(size, n)

        return draw(np.flatnonzero(self.m)), draw(np.flatnonzero(~self.m))

    def curves(
        self, w_in: np.ndarray | None = None, w_out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Non-member and member counts above every distinct threshold, prefixed with 0:
        fp, tp [..., T + 1]; of the data, or of resamples given as counts [..., n]."""
        if w_in is None or w_out is None:
            tp = np.cumsum(self.m)[self.last]
            fp = np.cumsum(~self.m)[self.last]
        else:
            tp = np.cumsum(w_in, axis=-1)[..., self.last]
            fp = np.cumsum(w_out, axis=-1)[..., self.last]
        zero = np.zeros((*tp.shape[:-1], 1), dtype=tp.dtype)
        return np.concatenate([zero, fp], -1), np.concatenate([zero, tp], -1)

    def summary(self, fp: np.ndarray, tp: np.ndarray) -> dict[str, np.ndarray]:
        """AUC (trapezoids), TPR at 0.1% and 1% FPR (the best TPR among thresholds whose FPR
        does not exceed the target), advantage and balanced accuracy, per curve."""
        n_in, n_out = self.n_in, self.n_out
        fp, tp = fp.astype(np.int64, copy=False), tp.astype(np.int64, copy=False)  # exact sums
        auc = np.sum(np.diff(fp, axis=-1) * (tp[..., 1:] + tp[..., :-1]), axis=-1)
        out = {"auc": auc / (2.0 * n_in * n_out)}
        for name, t in (("tpr_at_0.1%_fpr", 0.001), ("tpr_at_1%_fpr", 0.01)):
            k = np.sum(fp <= (t + 1e-12) * n_out, axis=-1, keepdims=True) - 1  # fp ascending
            out[name] = np.take_along_axis(tp, k, -1)[..., 0] / n_in  # tp ascending too
        adv = np.max(tp * n_out - fp * n_in, axis=-1) / (n_in * n_out)
        out["advantage"] = adv
        out["balanced_accuracy"] = 0.5 + adv / 2
        return out


@dataclass
class AttackMetrics:
    """Metrics of one attack on one set of members and non-members."""

    auc: float | None
    tpr_at_0_1_fpr: float | None
    tpr_at_1_fpr: float | None
    advantage: float | None
    balanced_accuracy: float | None
    n_members: int
    n_nonmembers: int
    fpr_grid: np.ndarray | None = None
    tpr_grid: np.ndarray | None = None
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    by_group: dict[str, dict[str, AttackMetrics]] = field(default_factory=dict)

    def to_dict(self, *, roc: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "auc": self.auc,
            "tpr_at_0.1%_fpr": self.tpr_at_0_1_fpr,
            "tpr_at_1%_fpr": self.tpr_at_1_fpr,
            "advantage": self.advantage,
            "balanced_accuracy": self.balanced_accuracy,
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
            "ci": {k: [float(a), float(b)] for k, (a, b) in self.ci.items()},
            "warnings": list(self.warnings),
        }
        if roc and self.tpr_grid is not None:
            out["roc"] = {"fpr": FPR_GRID.tolist(), "tpr": [float(v) for v in self.tpr_grid]}
        if self.by_group:
            out["by_group"] = {
                a: {g: m.to_dict(roc=False) for g, m in gs.items()}
                for a, gs in self.by_group.items()
            }
        return out


def _single(
    scores: np.ndarray,
    is_member: np.ndarray,
    n_bootstrap: int,
    confidence: float,
    rng: np.random.Generator,
) -> AttackMetrics:
    n_in, n_out = int(is_member.sum()), int((~is_member).sum())
    warns = []
    if n_in == 0 or n_out == 0:
        return AttackMetrics(None, None, None, None, None, n_in, n_out,
                             warnings=["needs both members and non-members"])  # fmt: skip
    if n_out < 1000:
        warns.append(
            f"TPR at 0.1% FPR rests on {n_out} non-members (< 1,000): not meaningful at that FPR."
        )
    if n_out < 100:
        warns.append(f"TPR at 1% FPR rests on {n_out} non-members (< 100): not meaningful.")
    roc = _Roc(scores, is_member)
    fp, tp = roc.curves()
    core = {k: float(v) for k, v in roc.summary(fp, tp).items()}
    fpr, tpr = fp / n_out, tp / n_in
    ci: dict[str, tuple[float, float]] = {}
    if n_bootstrap > 0:
        # Members and non-members are resampled separately (their counts stay fixed).
        boot = roc.summary(*roc.curves(*roc.bootstrap_counts(rng, n_bootstrap)))
        a = (1 - confidence) / 2
        ci = {k: tuple(float(x) for x in np.quantile(v, [a, 1 - a])) for k, v in boot.items()}
    return AttackMetrics(
        auc=core["auc"], tpr_at_0_1_fpr=core["tpr_at_0.1%_fpr"], tpr_at_1_fpr=core["tpr_at_1%_fpr"],
        advantage=core["advantage"], balanced_accuracy=core["balanced_accuracy"], n_members=n_in,
        n_nonmembers=n_out, fpr_grid=FPR_GRID, tpr_grid=roc_grid(fpr, tpr), ci=ci, warnings=warns,
    )  # fmt: skip


def attack_metrics(
    scores: Any,
    is_member: Any,
    *,
    groups: Any = None,
    intersections: bool | int = True,
    min_group_size: int = 20,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> AttackMetrics:
    """AUC, TPR at 0.1% / 1% FPR, advantage, balanced accuracy, ROC, counts and bootstrap CIs.

    ``scores``: membership scores (higher = member) [N]; ``is_member``: bool [N]. With
    ``groups`` (protected attributes of the same rows), the same metrics are computed on each
    group's members and non-members, for each attribute and intersection; groups with fewer than
    ``min_group_size`` members or non-members get counts but no figures.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    m = np.asarray(is_member).astype(bool).reshape(-1)
    if s.shape != m.shape:
        raise DataValidationError(
            f"scores ({s.shape[0]}) and is_member ({m.shape[0]}) differ in length."
        )
    if not np.isfinite(s).all():
        bad = int((~np.isfinite(s)).sum())
        raise DataValidationError(f"{bad} membership score(s) are NaN or infinite.")
    rng = np.random.default_rng(random_state)
    out = _single(s, m, n_bootstrap, confidence, rng)
    if groups is not None:
        sf = normalize_sensitive(groups, n_rows=len(s))
        for attr, labels in group_views(sf, intersections=intersections).items():
            out.by_group[attr] = {}
            for g in sorted_groups(set(labels.tolist())):
                sel = labels == g
                n_in, n_out = int(m[sel].sum()), int((~m[sel]).sum())
                if min(n_in, n_out) < min_group_size:
                    out.by_group[attr][str(g)] = AttackMetrics(
                        None, None, None, None, None, n_in, n_out,
                        warnings=[f"fewer than {min_group_size} members or non-members: no figures"],
                    )  # fmt: skip
                else:
                    out.by_group[attr][str(g)] = _single(
                        s[sel], m[sel], n_bootstrap, confidence, rng
                    )
    return out


def resampled_attack_metrics(scores: Any, is_member: Any, counts: Any) -> dict[str, np.ndarray]:
    """AUC, TPR at 0.1% / 1% FPR, advantage and balanced accuracy of one attack on B resamples
    of its rows, given as draw counts ``counts`` [B, N] (how often each row is drawn, rows in
    the order of ``scores``). Members and non-members must be resampled within themselves (each
    resample keeps their totals), as :func:`attack_metrics`' intervals do. The same counts for
    several models give a paired bootstrap (e.g. a Pareto front's membership probability)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    m = np.asarray(is_member).astype(bool).reshape(-1)
    w = np.asarray(counts)
    if w.ndim != 2 or w.shape[1] != len(s) or m.shape != s.shape:
        raise DataValidationError(
            f"counts must be [n_resamples, {len(s)}] (one count per row of scores); got shape {w.shape}."
        )
    n_in, n_out = int(m.sum()), int((~m).sum())
    if n_in == 0 or n_out == 0:
        raise DataValidationError("Resampled attack metrics need both members and non-members.")
    if (w[:, m].sum(1) != n_in).any() or (w[:, ~m].sum(1) != n_out).any():
        raise DataValidationError(
            "Each resample must draw as many members and non-members as the data has: resample "
            "them separately (e.g. fairleak.selection.bootstrap_indices with strata=is_member)."
        )
    roc = _Roc(s, m)
    ws = w[:, roc.order]
    tp = np.cumsum(np.where(roc.m, ws, 0), axis=1, dtype=np.int64)[:, roc.last]
    fp = np.cumsum(ws, axis=1, dtype=np.int64)[:, roc.last] - tp
    zero = np.zeros((len(ws), 1), dtype=np.int64)
    return roc.summary(np.concatenate([zero, fp], 1), np.concatenate([zero, tp], 1))
