"""Group fairness metrics for any classifier's predictions: per group, per intersection, with CIs.

Counts-based: every rate is a ratio of confusion-matrix cells per group, so the same code gives
the point estimate and (with multinomially resampled cell counts) the bootstrap. Resampling n
rows with replacement gives cell counts ~ Multinomial(n, observed cell shares) exactly, so a
1,000-sample bootstrap costs O(1000 x cells), not O(1000 x n).

Conventions for undefined rates (documented, tested): a rate whose denominator is zero (TPR of
a group with no positives, precision of a group with no predicted positives, FN/FP with no false
positives) is *undefined*: ``NaN`` in the table, ``None`` in ``to_dict()``, and that group is
left out of that gap, with a note naming it. A gap over fewer than two groups with a defined
value is itself undefined (``None``) with a note. Groups smaller than ``min_group_size`` are
marked ``too_small`` and left out of every gap. Metrics fairlearn computes agree with fairlearn
(checked in the tests); fairlearn returns 0 with a warning for some 0/0 cases, where we say
"undefined" instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairleak.data.groups import group_codes, group_views, normalize_sensitive
from fairleak.errors import DataValidationError

__all__ = [
    "GAPS",
    "GAP_NAMES",
    "RATES",
    "FairnessReport",
    "Gap",
    "GapResult",
    "Rate",
    "fairness_report",
    "group_metrics",
    "register_gap",
    "register_rate",
    "resampled_gaps",
]



@dataclass(frozen=True)
class Rate:
    """A per-group rate from confusion-matrix counts: ``numerator / denominator`` (undefined when
    the denominator is zero), each a function of the counts ``(tn, fp, fn, tp)``."""

    name: str
    numerator: Callable[..., np.ndarray]
    denominator: Callable[..., np.ndarray]
    label: str = ""


@dataclass(frozen=True)
class Gap:
    """A gap across groups: ``max - min`` (or ``min / max`` with ``ratio``) of one or more rates
    (several: the largest of their gaps, as equalized odds)."""

    name: str
    rates: tuple[str, ...]
    ratio: bool = False
    label: str = ""


#: Per-group rates, by name (the columns of the per-group table). ``ece`` is added from scores.
RATES: dict[str, Rate] = {}
#: Gaps, by name (every gap is reported per attribute and intersection, with CIs).
GAPS: dict[str, Gap] = {}


def register_rate(rate: Rate) -> Rate:
    RATES[rate.name] = rate
    return rate


def register_gap(gap: Gap) -> Gap:
    """Add a gap to every fairness report (its rates must be registered or ``ece``)."""
    GAPS[gap.name] = gap
    return gap


for _r in (
    Rate("selection_rate", lambda tn, fp, fn, tp: tp + fp, lambda tn, fp, fn, tp: tn + fp + fn + tp, "selection rate"),
    Rate("tpr", lambda tn, fp, fn, tp: tp, lambda tn, fp, fn, tp: tp + fn, "true positive rate"),
    Rate("fpr", lambda tn, fp, fn, tp: fp, lambda tn, fp, fn, tp: fp + tn, "false positive rate"),
    Rate("fnr", lambda tn, fp, fn, tp: fn, lambda tn, fp, fn, tp: tp + fn, "false negative rate"),
    Rate("precision", lambda tn, fp, fn, tp: tp, lambda tn, fp, fn, tp: tp + fp, "precision (PPV)"),
    Rate("accuracy", lambda tn, fp, fn, tp: tp + tn, lambda tn, fp, fn, tp: tn + fp + fn + tp, "accuracy"),
    Rate("fn_fp_ratio", lambda tn, fp, fn, tp: fn, lambda tn, fp, fn, tp: fp, "FN / FP"),
):
    register_rate(_r)
for _g in (
    Gap("demographic_parity_difference", ("selection_rate",), label="demographic parity difference"),
    Gap("demographic_parity_ratio", ("selection_rate",), ratio=True, label="demographic parity ratio"),
    Gap("equalized_odds_difference", ("tpr", "fpr"), label="equalized odds difference"),
    Gap("equal_opportunity_difference", ("tpr",), label="equal opportunity difference"),
    Gap("predictive_parity_difference", ("precision",), label="predictive parity difference"),
    Gap("accuracy_difference", ("accuracy",), label="accuracy difference"),
    Gap("treatment_equality_difference", ("fn_fp_ratio",), label="treatment equality difference"),
    Gap("calibration_difference", ("ece",), label="calibration (ECE) difference"),
):
    register_gap(_g)

GAP_NAMES = tuple(GAPS)  # the registered gaps (a live view is GAPS)


def _rate_columns() -> tuple[str, ...]:
    return (*RATES, "ece")


def _binary(name: str, values: Any, n: int | None, pos_label: Any = 1) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataValidationError(f"{name} must be 1-D; got shape {arr.shape}.")
    if n is not None and len(arr) != n:
        raise DataValidationError(
            f"{name} has {len(arr)} values but y_true has {n}; pass one per row."
        )
    if pd.isna(arr).any():
        raise DataValidationError(f"{name} has missing values; remove or fill them first.")
    uniq = np.unique(arr)
    if len(uniq) > 2:
        raise DataValidationError(
            f"{name} must be binary; it has {len(uniq)} distinct values ({uniq[:5].tolist()}...)."
        )
    if set(uniq.tolist()) <= {0, 1} or (arr.dtype == bool):
        return arr.astype(np.int64)
    if pos_label not in uniq.tolist():
        raise DataValidationError(
            f"{name} has values {uniq.tolist()}; pass pos_label= one of them (got {pos_label!r})."
        )
    return (arr == pos_label).astype(np.int64)


@dataclass(frozen=True)
class GapResult:
    """One gap across the groups of one attribute or intersection."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    groups_used: tuple[str, ...] = ()
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "groups_used": list(self.groups_used),
            "note": self.note,
        }


@dataclass
class FairnessReport:
    """Per-group table and named gaps, for each attribute and intersection."""

    table: pd.DataFrame
    gaps: dict[str, dict[str, GapResult]]
    too_small: dict[str, list[str]]
    min_group_size: int
    confidence: float
    n_bootstrap: int
    notes: list[str] = field(default_factory=list)

    def gap(self, attribute: str, name: str) -> float | None:
        return self.gaps[attribute][name].value

    def to_frame(self) -> pd.DataFrame:
        """Gaps as a tidy frame: attribute, gap, value, ci_low, ci_high, note."""
        rows = [
            {"attribute": a, "gap": g, **r.to_dict()}
            for a, gs in self.gaps.items()
            for g, r in gs.items()
        ]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: plain floats, ``None`` for undefined (never NaN)."""
        table = []
        for rec in self.table.to_dict(orient="records"):
            table.append(
                {
                    k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in rec.items()
                }
            )
        return {
            "min_group_size": self.min_group_size,
            "confidence": self.confidence,
            "n_bootstrap": self.n_bootstrap,
            "groups": table,
            "gaps": {a: {g: r.to_dict() for g, r in gs.items()} for a, gs in self.gaps.items()},
            "too_small": self.too_small,
            "notes": self.notes,
        }


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _rates(cells: np.ndarray, score_sum: np.ndarray | None, n_bins: int) -> dict[str, np.ndarray]:
    """Every registered rate from cell counts [..., G, bins, 2 (y), 2 (yhat)] (and score sums
    per cell for the calibration error)."""
    c = cells.sum(-3)  # over bins -> [..., G, 2, 2]
    counts = (c[..., 0, 0], c[..., 0, 1], c[..., 1, 0], c[..., 1, 1])  # tn, fp, fn, tp
    n = sum(counts)
    out = {"count": n}
    for name, rate in RATES.items():
        out[name] = _div(rate.numerator(*counts), rate.denominator(*counts))
    if score_sum is not None:
        nb = cells.sum((-1, -2))  # [..., G, bins]
        pos = cells[..., 1, :].sum(-1)  # y = 1 per bin
        conf = score_sum.sum((-1, -2))
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.abs(np.where(nb > 0, (pos - conf) / np.where(nb > 0, nb, 1), 0.0))
        out["ece"] = _div((nb * gap).sum(-1), nb.sum(-1))
    else:
        out["ece"] = np.full(n.shape, np.nan)
    return out


def _gap(name: str, rates: dict[str, np.ndarray], use: np.ndarray) -> np.ndarray:
    """Gap over the groups in ``use`` (bool [G]) with a defined rate; NaN if < 2 such groups."""
    vals = []
    spec = GAPS[name]
    for src in spec.rates:
        r = rates[src]
        r = np.where(use, r, np.nan)
        ok = np.isfinite(r).sum(-1) >= 2
        with np.errstate(invalid="ignore", divide="ignore"):
            hi = np.nanmax(np.where(np.isfinite(r), r, -np.inf), -1)
            lo = np.nanmin(np.where(np.isfinite(r), r, np.inf), -1)
            if spec.ratio:
                v = np.where(hi > 0, lo / np.where(hi > 0, hi, 1), np.nan)
            else:
                v = hi - lo
        vals.append(np.where(ok, v, np.nan))
    stacked = np.stack(vals)
    return np.where(np.isnan(stacked).any(0), np.nan, stacked.max(0))


def _gap_interval(
    spec: Gap, rates: dict[str, np.ndarray], boot: dict[str, np.ndarray], use: np.ndarray, confidence: float
) -> tuple[float, float] | None:
    """Bootstrap interval of a gap that always holds its point estimate.

    A gap is ``max |r_g - r_h|`` over the pairs of groups (and over its rates): under resampling
    that absolute value is biased upward, and near a true gap of 0 the percentile interval of the
    resampled gaps lies entirely above the estimate (0.001 [0.002, 0.130]) and never covers 0.
    Here the *signed* pairwise differences (of log rates for a ratio) get one simultaneous box,
    ``d_hat +- c * se`` with ``c`` the ``confidence`` quantile of the largest standardised
    deviation ``max |d* - d_hat| / se`` over the resamples (the max-t bootstrap, Romano & Wolf
    2005; for two groups and one rate, the symmetric basic interval of the difference). The gap's
    interval is the box's image: from the largest distance of a pair's box from 0 (0 when every
    pair's box holds 0) to its largest absolute value. Conservative with many groups (the box
    ignores that the differences are linked); None where a ratio has a zero rate (use the
    percentile interval)."""
    point, draws = [], []
    for src in spec.rates:
        r, rb = rates[src], boot[src]
        idx = [g for g in range(len(r)) if use[g] and np.isfinite(r[g])]
        with np.errstate(divide="ignore", invalid="ignore"):  # log 0, inf - inf: dropped below
            t, tb = (np.log(r), np.log(rb)) if spec.ratio else (r, rb)
            for a, b in itertools.combinations(idx, 2):
                point.append(t[a] - t[b])
                draws.append(tb[:, a] - tb[:, b])
    if not point:
        return None
    d = np.asarray(point)
    D = np.stack(draws, 1)  # [B, pairs]
    if not np.isfinite(d).all():
        return None
    # a resample where a small group's rate is undefined (no positives drawn) still counts for
    # the other pairs, as in the gap itself
    finite = np.isfinite(D)
    if (finite.sum(0) < 2).any():
        return None
    se = np.nanstd(np.where(finite, D, np.nan), 0, ddof=1)
    with np.errstate(invalid="ignore"):
        scaled = np.where(finite & (se > 0), np.abs(D - d) / np.where(se > 0, se, 1.0), 0.0)
    c = float(np.quantile(scaled[finite.any(1)].max(1), confidence))
    low, high = d - c * se, d + c * se
    upper = float(np.max(np.maximum(np.abs(low), np.abs(high))))
    lower = float(np.max(np.maximum(0.0, np.maximum(low, -high))))
    return (math.exp(-upper), math.exp(-lower)) if spec.ratio else (lower, upper)


def group_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    y_score: Any = None,
    intersections: bool | int = True,
    min_group_size: int = 30,
    n_bins: int = 10,
    pos_label: Any = 1,
) -> pd.DataFrame:
    """Per-group table: count, selection rate, TPR, FPR, FNR, precision, accuracy, FN/FP, ECE.

    One row per (attribute or intersection, group); ``too_small`` marks groups under
    ``min_group_size``. ECE (expected calibration error, ``n_bins`` equal-width bins) needs
    ``y_score`` = predicted P(y = 1).
    """
    return fairness_report(
        y_true, y_pred, sensitive_features=sensitive_features, y_score=y_score,
        intersections=intersections, min_group_size=min_group_size, n_bins=n_bins,
        n_bootstrap=0, pos_label=pos_label,
    ).table  # fmt: skip


def fairness_report(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    y_score: Any = None,
    intersections: bool | int = True,
    min_group_size: int = 30,
    n_bins: int = 10,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
    pos_label: Any = 1,
) -> FairnessReport:
    """Per-group metrics and every named gap (see :data:`GAP_NAMES`) with bootstrap CIs.

    Works on any model's predictions: ``y_true`` and ``y_pred`` binary (0/1, or two labels with
    ``pos_label``), ``y_score`` optional predicted probabilities of the positive class in [0, 1].
    Gaps are max - min across groups (``demographic_parity_ratio``: min / max), per protected
    attribute and per intersection (keys ``"race*sex"``). CIs come from ``n_bootstrap`` row
    resamples (seeded by ``random_state``): a simultaneous interval of the signed differences
    between groups, mapped to the gap, which holds the estimate and reaches 0 when no difference
    is shown (:func:`_gap_interval`; the percentile interval of ``|a - b|`` did neither).
    """
    y = _binary("y_true", y_true, None, pos_label)
    n = len(y)
    if n == 0:
        raise DataValidationError("y_true is empty.")
    yhat = _binary("y_pred", y_pred, n, pos_label)
    score = None
    if y_score is not None:
        score = np.asarray(y_score, dtype=np.float64)
        if score.ndim == 2 and score.shape[1] == 2:
            score = score[:, 1]
        if score.shape != (n,):
            raise DataValidationError(
                f"y_score must have one value per row ({n}); got shape {score.shape}."
            )
        if not np.isfinite(score).all() or score.min() < 0 or score.max() > 1:
            raise DataValidationError(
                "y_score must be probabilities in [0, 1] (e.g. predict_proba(X)[:, 1]); got values in "
                f"[{np.nanmin(score):.3g}, {np.nanmax(score):.3g}]. Pass probabilities, not logits."
            )
    if not 0 < confidence < 1:
        raise DataValidationError(f"confidence must be in (0, 1); got {confidence}.")
    sf = normalize_sensitive(sensitive_features, n_rows=n)
    views = group_views(sf, intersections=intersections)
    bins = (
        np.zeros(n, dtype=np.int64)
        if score is None
        else np.minimum((score * n_bins).astype(np.int64), n_bins - 1)
    )
    nb = n_bins if score is not None else 1
    rng = np.random.default_rng(random_state)
    rows, gaps, too_small, notes = [], {}, {}, []
    for attr, labels in views.items():
        codes, names = group_codes(labels)
        G = len(names)
        cell = ((codes * nb + bins) * 2 + y) * 2 + yhat
        size = G * nb * 4
        counts = np.bincount(cell, minlength=size).astype(np.float64)
        ssum = None if score is None else np.bincount(cell, weights=score, minlength=size)
        shape = (G, nb, 2, 2)
        rates = _rates(counts.reshape(shape), None if ssum is None else ssum.reshape(shape), nb)
        use = rates["count"] >= min_group_size
        too_small[attr] = [names[g] for g in range(G) if not use[g]]
        for g in range(G):
            rows.append(
                {"attribute": attr, "group": names[g], "count": int(rates["count"][g]),
                 **{k: float(rates[k][g]) for k in _rate_columns()}, "too_small": bool(not use[g])}
            )  # fmt: skip
        boot = None
        if n_bootstrap > 0:
            p = counts / counts.sum()
            bc = rng.multinomial(n, p, size=n_bootstrap).astype(np.float64)  # [B, cells]
            bs = None
            if ssum is not None:
                mean_score = np.divide(ssum, counts, out=np.zeros_like(ssum), where=counts > 0)
                bs = (bc * mean_score).reshape((n_bootstrap, *shape))
            boot = _rates(bc.reshape((n_bootstrap, *shape)), bs, nb)
        gaps[attr] = {}
        alpha = (1 - confidence) / 2
        for name, spec in GAPS.items():
            if "ece" in spec.rates and score is None:
                gaps[attr][name] = GapResult(None, note="needs y_score (predicted probabilities)")
                continue
            value = float(_gap(name, rates, use))
            defined = [
                names[g] for g in range(G)
                if use[g] and all(np.isfinite(rates[s][g]) for s in spec.rates)
            ]  # fmt: skip
            undefined = [names[g] for g in range(G) if use[g] and names[g] not in defined]
            note_parts = []
            if undefined:
                note_parts.append(
                    f"undefined for {', '.join(undefined)} (zero denominator); left out"
                )
            if too_small[attr]:
                note_parts.append(
                    f"{len(too_small[attr])} group(s) under {min_group_size} rows left out"
                )
            if not math.isfinite(value):
                note_parts.append("fewer than two groups with a defined value")
                gaps[attr][name] = GapResult(
                    None, groups_used=tuple(defined), note="; ".join(note_parts)
                )
                continue
            lo = hi = None
            if boot is not None:
                ci = _gap_interval(spec, rates, boot, use, confidence)
                if ci is not None:
                    lo, hi = ci
                else:  # a ratio with a zero rate: the percentile interval
                    bvals = _gap(name, boot, use)
                    bvals = bvals[np.isfinite(bvals)]
                    if len(bvals):
                        lo, hi = (float(v) for v in np.quantile(bvals, [alpha, 1 - alpha]))
            gaps[attr][name] = GapResult(
                value, lo, hi, tuple(defined), "; ".join(note_parts) or None
            )
    if any(too_small.values()):
        notes.append(
            f"Groups with fewer than {min_group_size} rows are marked too_small and left out of every gap."
        )
    return FairnessReport(
        table=pd.DataFrame(rows), gaps=gaps, too_small=too_small, min_group_size=min_group_size,
        confidence=confidence, n_bootstrap=n_bootstrap, notes=notes,
    )  # fmt: skip


def resampled_gaps(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    counts: Any,
    gaps: tuple[str, ...] | None = None,
    intersections: bool | int = True,
    min_group_size: int = 30,
) -> dict[str, dict[str, np.ndarray]]:
    """Every registered gap (or ``gaps``) per attribute and intersection on B resamples of the
    rows, given as draw counts ``counts`` [B, n]: ``{view: {gap: values [B]}}`` (NaN where a gap
    is undefined in a resample). Groups below ``min_group_size`` rows in the data are left out,
    as in :func:`fairness_report`; ``calibration_difference`` needs scores and is left out.
    The same counts for several models give a paired bootstrap across models."""
    y = _binary("y_true", y_true, None)
    n = len(y)
    yhat = _binary("y_pred", y_pred, n)
    w = np.asarray(counts, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != n:
        raise DataValidationError(f"counts must be [n_resamples, {n}]; got shape {w.shape}.")
    names = [g for g in (gaps or tuple(GAPS)) if "ece" not in GAPS[g].rates]
    views = group_views(normalize_sensitive(sensitive_features, n_rows=n), intersections=intersections)
    out: dict[str, dict[str, np.ndarray]] = {}
    for attr, labels in views.items():
        codes, groups = group_codes(labels)
        G = len(groups)
        cell = (codes * 2 + y) * 2 + yhat
        onehot = np.zeros((n, G * 4))
        onehot[np.arange(n), cell] = 1.0
        cells = (w @ onehot).reshape(len(w), G, 1, 2, 2)
        use = np.bincount(codes, minlength=G) >= min_group_size
        rates = _rates(cells, None, 1)
        out[attr] = {g: _gap(g, rates, use) for g in names}
    return out
